// Postilla report: draws the page from the JSON in #report-data. Every text from the data goes
// through textContent or a DOM attribute, never through innerHTML, so a document holding markup
// or scripts shows as text. Nothing is fetched.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var LIST_LIMIT = 500;
  var PALETTE = ['#f6bd60', '#84c5f4', '#b5e48c', '#f4978e', '#cdb4db', '#a8dadc', '#ffd6a5',
    '#caffbf', '#bdb2ff', '#ffc6ff', '#e9edc9', '#9bf6ff'];
  var SVGNS = 'http://www.w3.org/2000/svg';

  // h('div', {class: 'x', onclick: f}, child, 'text', ...): an element; strings become text nodes.
  function h(tag, attrs) {
    var el = document.createElement(tag);
    setAll(el, attrs);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function s(tag, attrs) {
    var el = document.createElementNS(SVGNS, tag);
    setAll(el, attrs);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function setAll(el, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else if (k === 'style') Object.keys(v).forEach(function (p) { el.style[p] = v[p]; });
      else el.setAttribute(k, String(v));
    });
  }
  // add(el, kid, ...): appends children (elements, strings as text nodes, arrays, nothing for null).
  function add(el) {
    for (var i = 1; i < arguments.length; i++) {
      var kid = arguments[i];
      if (kid === null || kid === undefined || kid === false) continue;
      if (Array.isArray(kid)) kid.forEach(function (k) { add(el, k); });
      else if (typeof kid === 'object') el.appendChild(kid);
      else el.appendChild(document.createTextNode(String(kid)));
    }
  }
  function fmt(x, d) { return (x === null || x === undefined) ? '–' : Number(x).toFixed(d === undefined ? 4 : d); }
  function ci(report, key) {
    var b = report.bootstrap && report.bootstrap.ci95[key];
    return b ? '[' + fmt(b[0]) + ', ' + fmt(b[1]) + ']' : '';
  }

  // ---- entity types and their colours ----
  var types = {};
  data.corpus.forEach(function (c) { Object.keys(c.per_type).forEach(function (t) { types[t] = 1; }); });
  if (data.evaluation) data.evaluation.reports.forEach(function (r) { r.types.forEach(function (t) { types[t] = 1; }); });
  data.documents.forEach(function (d) {
    if (d.gold) d.gold.entities.forEach(function (e) { types[e[2]] = 1; });
  });
  var typeNames = Object.keys(types).sort();
  var colour = {};
  typeNames.forEach(function (t, i) {
    colour[t] = i < PALETTE.length ? PALETTE[i] : 'hsl(' + ((i * 47) % 360) + ', 70%, 80%)';
  });
  function colourOf(t) { return colour[t] || '#dddddd'; }

  // ---- page skeleton ----
  var app = document.getElementById('app');
  var shownText = data.shown.sampled
    ? 'This page shows a sample of ' + data.shown.count + ' of the run\'s ' + data.total_documents +
      ' documents (--sample ' + data.shown.count + ' --seed ' + data.shown.seed +
      '); the scores and the corpus view cover all ' + data.total_documents + '.'
    : 'This page shows all ' + data.total_documents + ' documents of the run.';
  var systemsText = data.systems.map(function (n, i) { return (data.systems.length > 1 ? 'ABCD'[i] + ': ' : '') + n; }).join('; ');
  app.appendChild(h('header', null,
    h('h1', null, data.title),
    h('p', { id: 'shown' }, shownText),
    h('p', null, 'Run' + (data.systems.length > 1 ? 's' : '') + ': ' + systemsText +
      (data.has_gold ? '; scored against the gold.' : '; no gold given.') + ' Written by ' + data.generator + '.')));
  var tabs = [['documents', 'Documents'], ['corpus', 'Corpus']];
  if (data.evaluation) tabs.splice(1, 0, ['evaluation', 'Evaluation']);
  if (data.systems.length > 1) tabs.splice(tabs.length - 1, 0, ['comparison', 'Comparison']);
  var nav = h('nav', { role: 'tablist' });
  var sections = {};
  tabs.forEach(function (t) {
    nav.appendChild(h('button', { id: 'tab-' + t[0], type: 'button', onclick: function () { show(t[0]); } }, t[1]));
    sections[t[0]] = h('section', { id: t[0], class: 'tab' });
  });
  app.appendChild(nav);
  tabs.forEach(function (t) { app.appendChild(sections[t[0]]); });
  function show(name) {
    tabs.forEach(function (t) {
      sections[t[0]].classList.toggle('active', t[0] === name);
      document.getElementById('tab-' + t[0]).classList.toggle('active', t[0] === name);
    });
  }

  // ---- documents: list, filters, one document at a time ----
  var docs = data.documents;
  var listPane = h('aside', { id: 'doc-list-pane' });
  var search = h('input', { id: 'search', type: 'search', placeholder: 'search document id' });
  var typeFilter = h('select', { id: 'type-filter' }, h('option', { value: '' }, 'any entity type'),
    typeNames.map(function (t) { return h('option', { value: t }, 'with ' + t); }));
  var topicNames = {};
  docs.forEach(function (d) { if (d.systems[0].topics.length) topicNames[d.systems[0].topics[0][0]] = 1; });
  var topicFilter = h('select', { id: 'topic-filter' }, h('option', { value: '' }, 'any best topic'),
    Object.keys(topicNames).sort().map(function (t) { return h('option', { value: t }, 'best topic ' + t); }));
  var sortBy = h('select', { id: 'sort' }, h('option', { value: 'run' }, 'run order'),
    h('option', { value: 'id' }, 'by id'),
    data.has_gold ? data.systems.map(function (n, i) { return h('option', { value: 'errors-' + i }, 'most errors: ' + n); }) : null);
  var listCount = h('p', { id: 'list-count', class: 'note' });
  var list = h('ul', { id: 'doc-list' });
  add(listPane, [search, typeFilter, topicFilter, sortBy, listCount, list]);
  var view = h('div', { id: 'doc-view' });
  add(sections.documents, [listPane, view]);
  [search, typeFilter, topicFilter, sortBy].forEach(function (el) { el.addEventListener('input', drawList); });

  function errorCount(d, k) {
    var e = d.systems[k].errors;
    return e ? e.missed.length + e.spurious.length + e.wrong_type.length + e.boundary.length : 0;
  }
  function hasType(d, t) {
    return d.systems.some(function (l) { return l.entities.some(function (e) { return e[2] === t; }); }) ||
      (d.gold && d.gold.entities.some(function (e) { return e[2] === t; }));
  }
  var selected = -1;
  function drawList() {
    var q = search.value.trim().toLowerCase();
    var idx = [];
    docs.forEach(function (d, i) {
      if (q && d.id.toLowerCase().indexOf(q) < 0) return;
      if (typeFilter.value && !hasType(d, typeFilter.value)) return;
      if (topicFilter.value && !(d.systems[0].topics.length && d.systems[0].topics[0][0] === topicFilter.value)) return;
      idx.push(i);
    });
    if (sortBy.value === 'id') idx.sort(function (a, b) { return docs[a].id < docs[b].id ? -1 : docs[a].id > docs[b].id ? 1 : 0; });
    if (sortBy.value.indexOf('errors-') === 0) {
      var k = Number(sortBy.value.slice(7));
      idx.sort(function (a, b) { return errorCount(docs[b], k) - errorCount(docs[a], k) || a - b; });
    }
    list.textContent = '';
    idx.slice(0, LIST_LIMIT).forEach(function (i) {
      var d = docs[i];
      var badges = [h('span', { class: 'badge' }, d.systems[0].entities.length + ' ent.')];
      if (data.has_gold) badges.push(h('span', { class: 'badge errs' }, errorCount(d, 0) + ' err.'));
      if (d.systems.some(function (l) { return l.error; })) badges.push(h('span', { class: 'badge errs' }, 'error record'));
      list.appendChild(h('li', { class: 'doc-item' + (i === selected ? ' selected' : ''), 'data-index': i, 'data-id': d.id,
        onclick: function () { showDoc(i); } }, badges, d.id));
    });
    listCount.textContent = idx.length + ' of ' + docs.length + ' documents match' +
      (idx.length > LIST_LIMIT ? '; the first ' + LIST_LIMIT + ' are listed, narrow the search to see others' : '');
  }

  // Spans of one layer, with the error classes of `errors` (keys start:end) drawn on them.
  function layerSpans(entities, marks) {
    return entities.map(function (e) {
      var key = e[0] + ':' + e[1];
      return { start: e[0], end: e[1], label: e[2], score: e.length > 3 ? e[3] : null, mark: marks[key] || null };
    });
  }
  function marksOf(errors, side) {
    var m = {};
    if (!errors) return m;
    var put = function (sp, kind) { m[sp[0] + ':' + sp[1]] = kind; };
    if (side === 'gold') {
      errors.missed.forEach(function (sp) { put(sp, 'missed'); });
      errors.wrong_type.forEach(function (p) { put(p[0], 'type'); });
      errors.boundary.forEach(function (p) { put(p[0], 'boundary'); });
    } else {
      errors.spurious.forEach(function (sp) { put(sp, 'spurious'); });
      errors.wrong_type.forEach(function (p) { put(p[1], 'type'); });
      errors.boundary.forEach(function (p) { put(p[1], 'boundary'); });
    }
    return m;
  }
  var MARK_TEXT = { missed: 'missed', spurious: 'spurious', type: 'wrong type', boundary: 'wrong boundary' };

  // The text with its spans highlighted in place; nested spans nest, crossing ones are listed.
  function drawText(cps, spans) {
    var box = h('div', { class: 'doc-text' });
    var bad = [];
    var ok = spans.filter(function (sp) {
      var fine = sp.start >= 0 && sp.end <= cps.length && sp.start < sp.end;
      if (!fine) bad.push(sp);
      return fine;
    }).sort(function (a, b) { return a.start - b.start || b.end - a.end; });
    fill(box, cps, 0, cps.length, ok, bad);
    return { box: box, left: bad };
  }
  function fill(parent, cps, from, to, spans, left) {
    var pos = from;
    var i = 0;
    while (i < spans.length) {
      var sp = spans[i];
      var inner = [];
      var j = i + 1;
      while (j < spans.length && spans[j].start < sp.end) {
        if (spans[j].end <= sp.end) inner.push(spans[j]); else left.push(spans[j]);
        j++;
      }
      if (sp.start > pos) parent.appendChild(document.createTextNode(cps.slice(pos, sp.start).join('')));
      var title = sp.label + (sp.score !== null && sp.score !== undefined ? ' ' + fmt(sp.score, 3) : '') +
        (sp.mark ? ' (' + MARK_TEXT[sp.mark] + ')' : '');
      var el = h('span', { class: 'ent' + (sp.mark ? ' err-' + sp.mark : ''), 'data-label': sp.label, 'data-start': sp.start,
        'data-end': sp.end, title: title, style: { backgroundColor: colourOf(sp.label) } });
      fill(el, cps, sp.start, sp.end, inner, left);
      parent.appendChild(el);
      pos = sp.end;
      i = j;
    }
    if (to > pos) parent.appendChild(document.createTextNode(cps.slice(pos, to).join('')));
  }

  function topicBars(topics) {
    return h('div', { class: 'topics' }, topics.map(function (t) {
      var score = t[1] === null ? 0 : t[1];
      return [h('span', null, t[0]), h('div', { class: 'bar', title: t[0] + ' ' + fmt(score, 3) },
        h('div', { style: { width: Math.max(0, Math.min(100, score * 100)) + '%' } })), h('span', { class: 'muted' }, fmt(score, 3))];
    }));
  }
  function legend(withErrors) {
    return h('div', { class: 'legend' }, typeNames.map(function (t) {
      return h('span', { style: { backgroundColor: colourOf(t) } }, t);
    }), withErrors ? Object.keys(MARK_TEXT).map(function (k) {
      return h('span', { class: 'err-key ent err-' + k }, MARK_TEXT[k]);
    }) : null);
  }
  function errorList(cps, name, errors) {
    var slice = function (sp) { return '“' + cps.slice(sp[0], sp[1]).join('') + '” ' + sp[2]; };
    var items = [];
    errors.missed.forEach(function (sp) { items.push(['missed', slice(sp)]); });
    errors.spurious.forEach(function (sp) { items.push(['spurious', slice(sp)]); });
    errors.wrong_type.forEach(function (p) { items.push(['wrong type', slice(p[0]) + ' → ' + p[1][2]]); });
    errors.boundary.forEach(function (p) { items.push(['wrong boundary', slice(p[0]) + ' → ' + slice(p[1])]); });
    if (!items.length) return h('p', { class: 'note' }, name + ': no errors in this document.');
    return h('div', null, h('h4', null, name + ': ' + items.length + ' error' + (items.length > 1 ? 's' : '')),
      h('ul', { class: 'error-list' }, items.map(function (it) { return h('li', null, h('span', { class: 'kind' }, it[0]), it[1]); })));
  }

  function showDoc(i) {
    selected = i;
    Array.prototype.forEach.call(list.children, function (li) { li.classList.toggle('selected', Number(li.getAttribute('data-index')) === i); });
    var d = docs[i];
    view.textContent = '';
    var meta = [];
    if (d.lang) meta.push('language ' + d.lang[0] + ' (' + fmt(d.lang[1], 2) + ')');
    meta.push(d.text_note);
    if (d.text !== null) meta.push(Array.from(d.text).length + ' characters');
    add(view, [h('h2', null, d.id), h('p', { class: 'muted' }, meta.join(' · '))]);
    d.systems.forEach(function (l, k) {
      if (l.error) view.appendChild(h('div', { class: 'error-box' }, data.systems[k] + ': error record: ' + l.error));
    });
    var topicBoxes = [];
    d.systems.forEach(function (l, k) {
      if (l.topics.length) topicBoxes.push(h('div', null, h('h4', null, 'Topics, ' + data.systems[k]), topicBars(l.topics)));
    });
    if (d.gold && d.gold.topics.length) topicBoxes.push(h('p', null, 'Gold topic' + (d.gold.topics.length > 1 ? 's' : '') + ': ' + d.gold.topics.join(', ')));
    add(view, h('div', { class: 'charts' }, topicBoxes));
    add(view, legend(data.has_gold));
    if (d.text === null) {
      add(view, h('p', { class: 'note' }, 'The text is not available (' + d.text_note + '); entities: '),
        h('ul', null, d.systems[0].entities.map(function (e) { return h('li', null, e[2] + ' [' + e[0] + ', ' + e[1] + ')'); })));
      return;
    }
    var cps = Array.from(d.text);
    var layers = [];
    if (d.gold) {
      var goldMarks = {};
      d.systems.forEach(function (l) { var m = marksOf(l.errors, 'gold'); Object.keys(m).forEach(function (k) { goldMarks[k] = goldMarks[k] || m[k]; }); });
      layers.push(['Gold', 'gold', layerSpans(d.gold.entities, d.systems.length === 1 ? goldMarks : {})]);
    }
    d.systems.forEach(function (l, k) { layers.push([data.systems[k], 'system-' + k, layerSpans(l.entities, marksOf(l.errors, 'system'))]); });
    var panels = h('div', { class: 'panels', style: { gridTemplateColumns: 'repeat(' + layers.length + ', minmax(0, 1fr))' } });
    layers.forEach(function (layer) {
      var drawn = drawText(cps, layer[2]);
      drawn.box.setAttribute('data-layer', layer[1]);
      var note = drawn.left.length ? h('p', { class: 'note' }, drawn.left.length + ' span(s) cross another or fall outside the text and are not drawn: ' +
        drawn.left.map(function (sp) { return sp.label + ' [' + sp.start + ', ' + sp.end + ')'; }).join(', ')) : null;
      panels.appendChild(h('div', { class: 'panel' }, h('h3', null, layer[0] + ' · ' + layer[2].length + ' entities'), drawn.box, note));
    });
    view.appendChild(panels);
    if (d.gold) d.systems.forEach(function (l, k) { if (l.errors) view.appendChild(errorList(cps, data.systems[k], l.errors)); });
  }

  // ---- evaluation ----
  var SCHEMAS = ['strict', 'exact', 'partial', 'type'];
  function metricCell(report, key, value) {
    return h('td', { class: 'metric', 'data-metric': key, 'data-value': value }, fmt(value));
  }
  function entityTables(r, k) {
    var e = r.entities;
    var rows = SCHEMAS.map(function (name) {
      var x = e[name];
      return h('tr', null, h('td', null, name), h('td', null, x.counts.correct), h('td', null, x.counts.incorrect),
        h('td', null, x.counts.partial), h('td', null, x.counts.missed), h('td', null, x.counts.spurious),
        metricCell(r, 'entities.' + name + '.micro.precision', x.micro.precision),
        metricCell(r, 'entities.' + name + '.micro.recall', x.micro.recall),
        metricCell(r, 'entities.' + name + '.micro.f1', x.micro.f1), h('td', null, ci(r, 'entities.' + name + '.micro.f1')));
    });
    var strict = e.strict;
    var typeRows = Object.keys(strict.per_type).map(function (t) {
      var x = strict.per_type[t];
      return h('tr', null, h('td', null, h('span', { class: 'ent', 'data-label': '', style: { backgroundColor: colourOf(t) } }, t)),
        h('td', null, fmt(x.scores.precision)), h('td', null, fmt(x.scores.recall)),
        metricCell(r, 'entities.strict.per_type.' + t + '.f1', x.scores.f1),
        h('td', null, ci(r, 'entities.strict.per_type.' + t + '.f1')), h('td', null, x.possible));
    });
    typeRows.push(h('tr', null, h('td', null, 'macro avg'), h('td', null, fmt(strict.macro_avg.precision)),
      h('td', null, fmt(strict.macro_avg.recall)), metricCell(r, 'entities.strict.macro.f1', strict.macro_avg.f1),
      h('td', null, ci(r, 'entities.strict.macro.f1')), h('td', null, strict.possible)));
    return [
      h('h4', null, 'Entities, micro-averaged (types: ' + r.types.join(', ') + ')'),
      h('table', { class: 'schemas' }, h('thead', null, h('tr', null, ['schema', 'correct', 'incorrect', 'partial', 'missed', 'spurious', 'P', 'R', 'F1', 'F1 95% CI'].map(function (c) { return h('th', null, c); }))),
        h('tbody', null, rows)),
      h('h4', null, 'Strict, per type'),
      h('table', { class: 'per-type' }, h('thead', null, h('tr', null, ['type', 'P', 'R', 'F1', 'F1 95% CI', 'support'].map(function (c) { return h('th', null, c); }))),
        h('tbody', null, typeRows)),
      h('div', { class: 'charts' }, f1Chart(r), scoreChart(data.evaluation.scores[k]))
    ];
  }
  // Per-type strict F1 as bars with their bootstrap intervals as whiskers.
  function f1Chart(r) {
    var per = r.entities.strict.per_type;
    var names = Object.keys(per);
    var W = 360, row = 26, left = 70, H = names.length * row + 30, scale = W - left - 20;
    var g = s('svg', { width: W, height: H, role: 'img', 'aria-label': 'strict F1 per type' });
    [0, 0.25, 0.5, 0.75, 1].forEach(function (x) {
      g.appendChild(s('line', { x1: left + x * scale, x2: left + x * scale, y1: 4, y2: H - 20, stroke: '#d9dee7' }));
      g.appendChild(s('text', { x: left + x * scale - 8, y: H - 6 }, String(x)));
    });
    names.forEach(function (t, i) {
      var y = 8 + i * row, f1 = per[t].scores.f1;
      g.appendChild(s('text', { x: 4, y: y + 13 }, t));
      g.appendChild(s('rect', { class: 'f1-bar', x: left, y: y, width: f1 * scale, height: 16, fill: colourOf(t) }, s('title', null, t + ' F1 ' + fmt(f1))));
      var b = r.bootstrap && r.bootstrap.ci95['entities.strict.per_type.' + t + '.f1'];
      if (b) {
        g.appendChild(s('line', { x1: left + b[0] * scale, x2: left + b[1] * scale, y1: y + 8, y2: y + 8, stroke: '#1d2433', 'stroke-width': 1.5 }));
        [b[0], b[1]].forEach(function (v) { g.appendChild(s('line', { x1: left + v * scale, x2: left + v * scale, y1: y + 3, y2: y + 13, stroke: '#1d2433' })); });
      }
    });
    return h('div', { class: 'chart' }, h('h4', null, 'Strict F1 per type' + (r.bootstrap ? ', 95% bootstrap intervals' : '')), g);
  }
  // Histograms of the entity scores of correct and wrong predictions.
  function scoreChart(dist) {
    var bins = dist.correct.length, W = 360, H = 170, left = 34, bottom = 24, bw = (W - left - 10) / bins;
    var max = Math.max(1, Math.max.apply(null, dist.correct.concat(dist.wrong)));
    var g = s('svg', { width: W, height: H, role: 'img', 'aria-label': 'entity score distribution' });
    for (var i = 0; i < bins; i++) {
      [[dist.correct[i], '#3a9d5d', 0], [dist.wrong[i], '#c8453b', 1]].forEach(function (c) {
        var hgt = (H - bottom - 10) * c[0] / max;
        g.appendChild(s('rect', { x: left + i * bw + c[2] * bw / 2, y: H - bottom - hgt, width: bw / 2 - 1, height: hgt, fill: c[1] },
          s('title', null, (c[2] ? 'wrong' : 'correct') + ', score ' + fmt(i / bins, 2) + '–' + fmt((i + 1) / bins, 2) + ': ' + c[0])));
      });
    }
    [0, 0.5, 1].forEach(function (x) { g.appendChild(s('text', { x: left + x * (W - left - 10) - 6, y: H - 8 }, String(x))); });
    g.appendChild(s('text', { x: 2, y: 14 }, String(max)));
    return h('div', { class: 'chart' }, h('h4', null, 'Entity scores: correct (green) and wrong (red) predictions, strict'),
      g, dist.unscored ? h('p', { class: 'note' }, dist.unscored + ' predictions without a score') : null);
  }
  function topicTables(r) {
    var t = r.topics;
    var rows = Object.keys(t.per_class).map(function (l) {
      var c = t.per_class[l];
      return h('tr', null, h('td', null, l), h('td', null, fmt(c.precision)), h('td', null, fmt(c.recall)), h('td', null, fmt(c.f1)), h('td', null, c.support));
    });
    var out = [h('h4', null, 'Topics (' + t.mode + '), ' + t.documents + ' documents'),
      h('table', { class: 'topic-summary' }, h('tbody', null,
        h('tr', null, h('td', null, 'accuracy'), metricCell(r, 'topics.accuracy', t.accuracy), h('td', null, ci(r, 'topics.accuracy'))),
        h('tr', null, h('td', null, 'macro F1'), metricCell(r, 'topics.macro.f1', t.macro_avg.f1), h('td', null, ci(r, 'topics.macro.f1'))))),
      h('table', { class: 'per-class' }, h('thead', null, h('tr', null, ['class', 'P', 'R', 'F1', 'support'].map(function (c) { return h('th', null, c); }))), h('tbody', null, rows))];
    if (t.confusion.length) out.push(heatMap(t.labels, t.confusion));
    return out;
  }
  // The confusion matrix as a heat map: rows gold, columns predicted, shade by row share.
  function heatMap(labels, m) {
    var head = h('tr', null, h('th', null, 'gold \\ predicted'), labels.map(function (l) { return h('th', null, l); }));
    var rows = m.map(function (row, i) {
      var total = row.reduce(function (a, b) { return a + b; }, 0) || 1;
      return h('tr', null, h('th', null, labels[i]), row.map(function (v, j) {
        var a = v / total;
        return h('td', { title: labels[i] + ' → ' + labels[j] + ': ' + v, style: { backgroundColor: 'rgba(47, 95, 179, ' + a.toFixed(3) + ')', color: a > 0.55 ? '#fff' : '#1d2433' } }, v);
      }));
    });
    return h('div', { class: 'chart' }, h('h4', null, 'Confusion matrix (rows gold, columns predicted)'), h('table', { class: 'heat' }, h('thead', null, head), h('tbody', null, rows)));
  }
  if (data.evaluation) {
    data.evaluation.reports.forEach(function (r, k) {
      var box = h('div', { class: 'eval-system', id: 'eval-' + k }, h('h3', null, data.systems[k]),
        h('p', { class: 'note' }, r.documents + ' documents' + (r.prediction_errors ? ', ' + r.prediction_errors + ' error records scored as empty' : '') +
          (r.bootstrap ? '; intervals from ' + r.bootstrap.samples + ' bootstrap resamples of documents (seed ' + r.bootstrap.seed + ')' : '') +
          (Object.keys(r.ignored_predicted).length ? '; predicted types not scored: ' + JSON.stringify(r.ignored_predicted) : '')));
      if (r.entities) add(box, entityTables(r, k));
      if (r.topics) add(box, topicTables(r));
      sections.evaluation.appendChild(box);
    });
  }

  // ---- comparison ----
  if (sections.comparison) {
    var p = data.evaluation && data.evaluation.paired;
    if (p) {
      add(sections.comparison, h('p', null, 'Paired bootstrap test (' + p.samples + ' resamples of documents, seed ' + p.seed + '): B = ' + data.systems[1] + ' against A = ' + data.systems[0] + '.'),
        h('table', { id: 'paired' }, h('thead', null, h('tr', null, ['metric', 'A', 'B', 'B − A', 'p'].map(function (c) { return h('th', null, c); }))),
          h('tbody', null, Object.keys(p.metrics).map(function (m) {
            var x = p.metrics[m];
            return h('tr', null, h('td', null, m), h('td', null, fmt(x.a)), h('td', null, fmt(x.b)), h('td', null, (x.delta >= 0 ? '+' : '') + fmt(x.delta)), h('td', null, fmt(x.p_value)));
          }))));
    } else {
      add(sections.comparison, h('p', { class: 'note' }, 'The two runs are shown side by side in each document. Give --gold (and bootstrap resamples) for the paired bootstrap test.'));
    }
  }

  // ---- corpus ----
  function countBars(title, counts) {
    var keys = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); });
    var max = Math.max.apply(null, [1].concat(keys.map(function (k) { return counts[k]; })));
    return h('div', { class: 'chart' }, h('h4', null, title), h('div', { class: 'topics' }, keys.map(function (k) {
      return [h('span', null, k), h('div', { class: 'bar' }, h('div', { style: { width: (100 * counts[k] / max) + '%', backgroundColor: colour[k] || '' } })), h('span', { class: 'muted' }, counts[k])];
    })));
  }
  data.corpus.forEach(function (c, k) {
    var top = h('table', { class: 'top-entities' }, h('thead', null, h('tr', null, h('th', null, 'type'), h('th', null, 'most frequent entities'))),
      h('tbody', null, Object.keys(c.top_entities).map(function (t) {
        return h('tr', null, h('td', null, t), h('td', null, c.top_entities[t].map(function (x) { return x[0] + ' ×' + x[1]; }).join(' · ')));
      })));
    add(sections.corpus, h('div', { class: 'corpus-system' }, h('h3', null, data.systems[k]),
      h('p', { class: 'note' }, c.documents + ' documents, ' + c.error_records + ' error records, ' + c.entities + ' entities.'),
      h('div', { class: 'charts' }, countBars('Entities per type', c.per_type), countBars('Documents per best topic', c.best_topic),
        countBars('Documents per language', c.languages)), top));
  });

  show('documents');
  drawList();
  if (docs.length) showDoc(0);
  document.body.setAttribute('data-ready', 'true');
})();
