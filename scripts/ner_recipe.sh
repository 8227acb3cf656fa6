# The default NER model's recipe as `postilla train ner` arguments, sourced by
# scripts/train_ner_postilla.sh (the run) and scripts/train_speed.sh (its speed), so that both
# train the same thing: training/train_ner.py's gold sets (imported by train_ner_postilla.sh
# into DATA_DIR), its labels, the partial label for Italian O (MISC), document windows over
# consecutive sentences, news spacing on half of the sentences, lr 1e-4, 2 threads, selection
# on KIND WN dev and CoNLL-2003 German dev.
#   source scripts/ner_recipe.sh; ner_recipe_args DATA_DIR EPOCHS   # sets the array recipe_args
ner_recipe_args() {
    local d=$1 epochs=$2 f
    local italian=("$d/kind-WN-train.jsonl" "$d/kind-FIC-train.jsonl" "$d/kind-ADG-train.jsonl" "$d/evalita-train.jsonl")
    recipe_args=(train ner --train "${italian[@]}" "$d/conll-de-train.jsonl"
                 --dev "$d/kind-WN-dev.jsonl" "$d/conll-de-dev.jsonl"
                 --labels PER,ORG,LOC,MISC --epochs "$epochs" --lr 1e-4 --threads 2 --news-share 0.5)
    for f in "${italian[@]}"; do recipe_args+=(--missing-types "$f:MISC" --join-records "$f"); done
}
