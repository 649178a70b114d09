// dfpipe report: renders the JSON document of #dfpipe-data. Text goes in with textContent
// only, never as markup, and nothing is fetched.
(function () {
  'use strict';
  const errors = [];
  window.addEventListener('error', (event) => showError(String(event.message)));

  const data = JSON.parse(document.getElementById('dfpipe-data').textContent);
  const views = new Map(data.views.map((v) => [v.name, v]));
  const sources = new Map(data.sources.map((s) => [s.name, s]));
  let svgNamespace = '';
  const nodes = new Map(); // name -> SVG group of its node
  const edges = []; // {from, to, path}

  // ---- small DOM helpers ----
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
    }
    return node;
  }
  function sv(tag, attrs, text) {
    const node = document.createElementNS(svgNamespace, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function badge(text, cls) {
    return el('span', { class: 'badge ' + (cls || '') }, text);
  }
  function table(headers, rows) {
    return el('table', {}, el('tr', {}, headers.map((h) => el('th', {}, h))), rows);
  }
  function showError(message) {
    errors.push(message);
    const box = document.getElementById('errors');
    box.style.display = 'block';
    box.textContent = 'The report could not be drawn whole: ' + errors.join('; ');
  }
  function statusOf(view) {
    return view.last ? view.last.status : 'never';
  }
  function ms(value) {
    return value === null || value === undefined ? '' : value + ' ms';
  }

  // ---- header ----
  function header() {
    const run = data.run;
    const legend = [
      ['succeeded', 'var(--ok)'], ['failed', 'var(--failed)'], ['upstream failed', 'var(--upstream)'],
      ['skipped', 'var(--skipped)'], ['never ran', 'var(--never)'], ['source', 'var(--source)'],
    ].map(([label, colour]) => el('span', { style: '--swatch: ' + colour }, label));
    return el('header', {},
      el('h1', {}, 'dfpipe report: ' + data.pipeline),
      el('span', { class: 'run' }, run
        ? ['last run ', run.run_id, ' ', badge(run.status, run.status === 'succeeded' ? 'succeeded' : 'failed'),
          run.previous_run_id ? ' compared with run ' + run.previous_run_id : ' (no earlier run to compare with)']
        : 'no run recorded yet'),
      el('span', { class: 'legend' }, legend));
  }

  // ---- the DAG, laid out in layers by dagre ----
  function dag() {
    const svg = document.getElementById('dag-svg');
    svgNamespace = svg.namespaceURI;
    const graph = new dagre.graphlib.Graph();
    graph.setGraph({ rankdir: 'LR', nodesep: 6, ranksep: 50, edgesep: 4, marginx: 8, marginy: 8 });
    graph.setDefaultEdgeLabel(() => ({}));
    const size = (name) => ({ width: 7.3 * name.length + 16, height: 22 });
    for (const source of data.sources) graph.setNode(source.name, { ...size(source.name), source: true });
    for (const view of data.views) graph.setNode(view.name, { ...size(view.name), source: false });
    for (const view of data.views) {
      for (const relation of view.lineage.depends_on) {
        if (!graph.hasNode(relation)) graph.setNode(relation, { ...size(relation), source: true });
        graph.setEdge(relation, view.name);
      }
    }
    dagre.layout(graph);
    const layout = graph.graph();
    svg.setAttribute('width', Math.ceil(layout.width));
    svg.setAttribute('height', Math.ceil(layout.height));
    svg.setAttribute('viewBox', '0 0 ' + Math.ceil(layout.width) + ' ' + Math.ceil(layout.height));
    const edgeLayer = sv('g', { class: 'edges' });
    const nodeLayer = sv('g', { class: 'nodes' });
    svg.append(edgeLayer, nodeLayer);
    for (const e of graph.edges()) {
      const points = graph.edge(e).points;
      const d = points.map((p, i) => (i === 0 ? 'M' : 'L') + p.x.toFixed(1) + ',' + p.y.toFixed(1)).join(' ');
      const path = sv('path', { class: 'edge', d: d, 'marker-end': 'url(#arrow)' });
      edgeLayer.append(path);
      edges.push({ from: e.v, to: e.w, path: path });
    }
    for (const name of graph.nodes()) {
      const n = graph.node(name);
      const view = views.get(name);
      const cls = 'node ' + (view ? statusOf(view) : 'source');
      const group = sv('g', { class: cls, transform: 'translate(' + (n.x - n.width / 2) + ',' + (n.y - n.height / 2) + ')' });
      group.append(sv('rect', { width: n.width, height: n.height }));
      group.append(sv('text', { x: 8, y: 15 }, name));
      const tip = view ? name + ': ' + statusOf(view) + (view.last && view.last.reason ? ' (' + view.last.reason + ')' : '') : name + ' (source)';
      group.append(sv('title', {}, tip));
      group.addEventListener('click', () => select(name));
      group.dataset.x = n.x;
      group.dataset.y = n.y;
      nodeLayer.append(group);
      nodes.set(name, group);
    }
    const defs = sv('defs');
    const marker = sv('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 6, markerHeight: 6, orient: 'auto' });
    marker.append(sv('path', { d: 'M0,0 L8,4 L0,8 z', fill: '#8c96a3' }));
    defs.append(marker);
    svg.prepend(defs);
  }

  /// Scrolls the DAG so that `name`'s node is in sight, unless the whole DAG fits.
  function reveal(name) {
    const group = nodes.get(name);
    const box = document.getElementById('dag-scroll');
    if (!group || fitted) return;
    box.scrollLeft = Number(group.dataset.x) - box.clientWidth / 2;
    box.scrollTop = Number(group.dataset.y) - box.clientHeight / 2;
  }

  /// Toggles between the DAG at its natural size (scrolling) and scaled to the panel's width.
  let fitted = false;
  function fit() {
    const svg = document.getElementById('dag-svg');
    fitted = !fitted;
    svg.style.width = fitted ? '100%' : '';
    svg.style.height = fitted ? 'auto' : '';
    document.getElementById('fit').textContent = fitted ? 'natural size' : 'fit to width';
  }

  function light(names, selected) {
    for (const [name, group] of nodes) {
      group.classList.toggle('selected', name === selected);
      group.classList.toggle('lit', names.has(name) && name !== selected);
    }
    for (const e of edges) e.path.classList.toggle('lit', names.has(e.from) && names.has(e.to));
  }

  // ---- details of the chosen view or source ----
  const detail = () => document.getElementById('detail');
  let chosenTab = 'columns';

  function select(name) {
    const box = detail();
    box.replaceChildren();
    const view = views.get(name);
    reveal(name);
    if (!view) return selectSource(name, box);
    const neighbours = new Set([name, ...view.lineage.depends_on]);
    for (const other of data.views) if (other.lineage.depends_on.includes(name)) neighbours.add(other.name);
    light(neighbours, name);
    const last = view.last;
    box.append(el('h2', {}, view.name + ' ',
      badge(view.kind), badge(view.materialize), badge(last ? last.status : 'never ran', last ? last.status : '')));
    box.append(el('div', { class: 'muted' },
      (view.will_run ? 'would run now: ' : 'would not run now: ') + view.reason,
      last && last.duration_ms !== null ? ' · last took ' + ms(last.duration_ms) : '',
      last && last.rows !== null ? ' · ' + last.rows + ' rows' : ''));
    if (last && last.reason) {
      const failed = last.status === 'failed' || last.status === 'upstream_failed';
      box.append(failed ? el('pre', { class: 'error' }, last.reason) : el('div', { class: 'muted' }, 'last run: ' + last.reason));
    }
    const tabs = [
      ['columns', 'Columns & lineage', () => columns(view)],
      ['explain', 'Explain (tree)', () => el('pre', {}, view.tree || '(no tree explain captured)')],
      ['write', 'Last write', () => write(view)],
      ['contracts', 'Contracts', () => contracts(view.name)],
      ['diff', 'Diff', () => diff(view)],
      ['sql', 'SQL', () => el('pre', {}, view.sql || '(not captured)')],
    ];
    const body = el('div', {});
    const bar = el('div', { class: 'tabs' });
    const show = (key) => {
      chosenTab = key;
      for (const button of bar.children) button.classList.toggle('active', button.dataset.tab === key);
      body.replaceChildren(tabs.find((t) => t[0] === key)[2]());
    };
    for (const [key, label] of tabs) bar.append(el('button', { 'data-tab': key, onclick: () => show(key) }, label));
    box.append(bar, body);
    show(chosenTab);
  }

  function selectSource(name, box) {
    light(new Set([name, ...data.views.filter((v) => v.lineage.depends_on.includes(name)).map((v) => v.name)]), name);
    const source = sources.get(name);
    box.append(el('h2', {}, name + ' ', badge('source')));
    if (source) box.append(el('div', { class: 'muted' }, source.format + ' at ' + source.location));
    const readers = data.views.filter((v) => v.lineage.depends_on.includes(name)).map((v) => v.name);
    box.append(el('p', {}, 'Read by: ' + (readers.join(', ') || 'no view')));
    box.append(el('h3', {}, 'Contracts'), contracts(name));
  }

  function columns(view) {
    const trace = el('div', {}, el('p', { class: 'muted' }, 'Choose a column to follow its sources down to the tables.'));
    const rows = view.columns.map((c) => {
      const row = el('tr', { class: 'pick' }, el('td', {}, c.name), el('td', {}, c.data_type), el('td', {}, c.nullable ? 'null' : 'not null'));
      row.addEventListener('click', () => {
        for (const other of row.parentNode.querySelectorAll('tr.pick')) other.classList.remove('active');
        row.classList.add('active');
        trace.replaceChildren(lineage(view, c.name));
      });
      return row;
    });
    const inspected = view.deep.inspected.map((i) =>
      el('li', {}, badge('inspected: ' + i.role, 'inspected'), i.relation + '.' + i.column));
    return el('div', {}, table(['column', 'type', 'nullable'], rows), trace,
      el('h3', {}, 'Columns that decide the rows (down to the sources)'),
      inspected.length ? el('ul', { class: 'trace' }, inspected) : el('p', { class: 'muted' }, 'none'));
  }

  /// The sources of `column` of `view`: each step through views, then the --deep result.
  function lineage(view, column) {
    const lit = new Set([view.name]);
    const step = (name, col, path) => {
      const v = views.get(name);
      const entry = v && v.lineage.columns.find((c) => c.name === col);
      if (!entry) return null;
      const items = entry.sources.map((s) => {
        lit.add(s.relation);
        const through = views.has(s.relation) && !path.includes(s.relation)
          ? step(s.relation, s.column, path.concat([s.relation])) : null;
        return el('li', {}, badge(s.kind, s.kind), s.relation + '.' + s.column,
          views.has(s.relation) ? el('span', { class: 'muted' }, ' (view)') : el('span', { class: 'muted' }, ' (source)'),
          through);
      });
      for (const why of entry.unresolved || []) items.push(el('li', { class: 'muted' }, 'unresolved: ' + why));
      return el('ul', { class: 'trace' }, items.length ? items : [el('li', { class: 'muted' }, 'a constant: no source column')]);
    };
    const tree = step(view.name, column, [view.name]);
    const deep = view.deep.columns.find((c) => c.name === column);
    const flat = deep ? deep.sources.map((s) => el('li', {}, badge(s.kind, s.kind), s.relation + '.' + s.column)) : [];
    light(lit, view.name);
    return el('div', {},
      el('h3', {}, view.name + '.' + column + ', step by step through views'), tree,
      el('h3', {}, 'Down to the sources (lineage --deep)'),
      flat.length ? el('ul', { class: 'trace' }, flat) : el('p', { class: 'muted' }, 'no source column'));
  }

  function write(view) {
    if (!view.write) return el('p', { class: 'muted' }, view.materialize === 'lazy' ? 'a lazy view is never written' : 'no recorded write yet');
    const r = view.write.report;
    const facts = [
      ['run', view.write.run_id], ['target', r.target], ['format', r.format], ['rows', r.rows],
      ['bytes', r.bytes], ['files', r.files.length], ['duration', ms(r.duration_ms)],
      ['partition by', (r.partition_by || []).join(', ')],
      ['sort by', (r.sort_by || []).map((s) => s.column + (s.descending ? ' DESC' : '')).join(', ')],
    ];
    const knobs = Object.entries(r.knobs || {}).map(([k, v]) => ['knob ' + k, String(v)]);
    const options = Object.entries(r.options || {});
    return el('div', {},
      table(['', ''], facts.concat(knobs).map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, String(v))))),
      el('h3', {}, 'Format options'),
      table(['option', 'value'], options.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v)))),
      el('h3', {}, 'Files'),
      table(['path', 'bytes'], r.files.map((f) => el('tr', {}, el('td', {}, f.path), el('td', {}, f.bytes)))));
  }

  function contracts(relation) {
    const results = data.contracts.filter((c) => c.relation === relation);
    if (!results.length) return el('p', { class: 'muted' }, 'no contract declared');
    return table(['constraint', 'columns', 'violations', 'samples'], results.map((c) => el('tr', {},
      el('td', {}, c.constraint), el('td', {}, c.columns.join(', ')),
      el('td', {}, badge(String(c.violations), c.violations ? 'failed' : 'succeeded')),
      el('td', {}, c.samples.length ? el('pre', {}, JSON.stringify(c.samples, null, 1)) : ''))));
  }

  function diff(view) {
    if (!data.run || !data.run.previous_run_id) return el('p', { class: 'muted' }, 'one run recorded or none: nothing to compare');
    const d = view.diff;
    if (!d) return el('p', { class: 'muted' }, 'unchanged between run ' + data.run.previous_run_id + ' and run ' + data.run.run_id);
    const schema = d.schema || { added: [], removed: [], retyped: [] };
    const lines = [
      ['change', d.change], ['category', d.category || ''], ['indirect', d.indirect ? 'yes: an upstream view changed' : 'no'],
      ['ingredients', (d.ingredients || []).join(', ')],
      ['columns added', schema.added.map((c) => c.name + ' ' + c.data_type).join(', ')],
      ['columns removed', schema.removed.map((c) => c.name).join(', ')],
      ['columns retyped', schema.retyped.map((c) => c.name + ': ' + c.from.data_type + ' → ' + c.to.data_type).join(', ')],
    ];
    const changed = (list) => list.map((s) => el('tr', {}, el('td', {}, s.key), el('td', {}, s.from || '∅'), el('td', {}, s.to || '∅')));
    return el('div', {},
      table(['', ''], lines.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, String(v))))),
      (d.settings || []).length ? [el('h3', {}, 'Settings'), table(['key', 'from', 'to'], changed(d.settings))] : null,
      (d.write_options || []).length ? [el('h3', {}, 'Writer options'), table(['key', 'from', 'to'], changed(d.write_options))] : null,
      d.plan_diff ? [el('h3', {}, 'Plan'), el('pre', {}, d.plan_diff)] : null);
  }

  // ---- the Gantt chart: the last run beside the predicted schedule ----
  function gantt() {
    const svg = document.getElementById('gantt-svg');
    const panels = [];
    if (data.schedule.actual) panels.push(['Last run, as it went', data.schedule.actual, false]);
    panels.push(['Predicted (cost model)', data.schedule.predicted, true]);
    const horizon = Math.max(1, ...panels.map(([, t]) => Math.max(t.makespan_ms, t.lower_bound_ms,
      ...t.bars.map((b) => b.end_ms))));
    const left = 70, width = Math.max(600, document.getElementById('gantt-section').clientWidth - left - 50);
    const lane = 20, x = (t) => left + (t / horizon) * width;
    let y = 4;
    for (const [title, timeline, predicted] of panels) {
      const critical = new Set(timeline.critical_path);
      svg.append(sv('text', { x: 0, y: y + 12, 'font-weight': 'bold' },
        title + ': makespan ' + timeline.makespan_ms + ' ms, lower bound ' + timeline.lower_bound_ms +
        ' ms, ' + timeline.workers + ' worker(s); critical path: ' + (timeline.critical_path.join(' → ') || 'none')));
      y += 20;
      const top = y;
      for (let w = 0; w < timeline.workers; w++) {
        svg.append(sv('text', { x: 0, y: y + 14 }, 'worker ' + w));
        svg.append(sv('line', { class: 'axis', x1: left, x2: left + width, y1: y + lane, y2: y + lane }));
        for (const bar of timeline.bars.filter((b) => b.worker === w)) {
          const cls = 'bar ' + (predicted ? 'predicted' : (bar.status || 'succeeded')) + (critical.has(bar.view) ? ' critical' : '');
          const rect = sv('rect', { class: cls, x: x(bar.start_ms), y: y + 2, height: lane - 4,
            width: Math.max(1.5, x(bar.end_ms) - x(bar.start_ms)) });
          rect.append(sv('title', {}, bar.view + ': ' + bar.start_ms + '–' + bar.end_ms + ' ms' +
            (critical.has(bar.view) ? ' (critical path)' : '')));
          rect.addEventListener('click', () => select(bar.view));
          svg.append(rect);
          if (x(bar.end_ms) - x(bar.start_ms) > 7.3 * bar.view.length + 4) {
            svg.append(sv('text', { x: x(bar.start_ms) + 2, y: y + 14, 'pointer-events': 'none' }, bar.view));
          }
        }
        y += lane;
      }
      if (!timeline.bars.length) {
        svg.append(sv('text', { x: left, y: y + 14, class: 'muted' }, 'no view ran'));
        y += lane;
      }
      svg.append(sv('line', { class: 'bound', x1: x(timeline.lower_bound_ms), x2: x(timeline.lower_bound_ms), y1: top, y2: y }));
      svg.append(sv('line', { class: 'makespan', x1: x(timeline.makespan_ms), x2: x(timeline.makespan_ms), y1: top, y2: y }));
      y += 16;
    }
    svg.append(sv('text', { x: left, y: y }, '0 ms'));
    svg.append(sv('text', { x: left + width - 60, y: y }, horizon + ' ms'));
    svg.append(sv('text', { x: left + width / 2 - 160, y: y, class: 'muted' },
      'red dashes: lower bound · black dashes: makespan · thick outline: critical path'));
    svg.setAttribute('width', left + width + 20);
    svg.setAttribute('height', y + 10);
  }

  // ---- the page ----
  document.title = 'dfpipe report: ' + data.pipeline;
  document.body.prepend(header());
  dag();
  gantt();
  const search = document.getElementById('search');
  const names = document.getElementById('names');
  for (const name of [...views.keys(), ...data.sources.map((s) => s.name)].sort()) names.append(el('option', { value: name }));
  search.addEventListener('change', () => { if (nodes.has(search.value)) select(search.value); });
  document.getElementById('fit').addEventListener('click', fit);
  // First shown: the view and tab the address names (`report.html#view=q06&tab=diff`), else a
  // failed view, else the end of the last run's critical path, else the last view.
  const asked = new URLSearchParams(window.location.hash.slice(1));
  if (['columns', 'explain', 'write', 'contracts', 'diff', 'sql'].includes(asked.get('tab'))) chosenTab = asked.get('tab');
  const path = (data.schedule.actual || data.schedule.predicted).critical_path;
  const first = (nodes.has(asked.get('view')) && { name: asked.get('view') }) ||
    data.views.find((v) => v.last && v.last.status === 'failed') ||
    views.get(path[path.length - 1]) || data.views[data.views.length - 1];
  if (first) {
    select(first.name);
    const row = detail().querySelector('tr.pick');
    if (row) row.dispatchEvent(new MouseEvent('click'));
  }
  document.body.dataset.rendered = errors.length ? 'with-errors' : 'ok';
})();
