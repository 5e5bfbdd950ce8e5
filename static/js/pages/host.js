// Host topology page: loads topology.json, draws the tree or group view, handles zoom, search, selection.
import { topologyChart } from '../charts/topology.js';
import { groupsChart } from '../charts/groups.js';
import { foldRows, ancestorsOf } from '../charts/collapse.js';
import { withMdevs } from '../charts/mdevs.js';
import { OWNER, HOLDER_COLOR, VIOLATION_COLOR, GROUP_COLOR, MDEV_COLOR, ownerSymbol } from '../charts/palette.js';
import { BACKEND, CERTAINTY } from '../charts/spaces.js';
import { renderDevicePanel, renderGroupPanel, renderHolderPanel, renderMdevPanel } from '../components/panel.js';
import { renderSpacePanel } from '../components/space_panel.js';
import { renderUnitPanel } from '../components/unit_panel.js';

const d3 = window.d3;
const pageData = JSON.parse(document.getElementById('host-page-data').textContent);
const container = document.getElementById('topology');
const panel = document.getElementById('side-panel');
const status = document.getElementById('topo-search-status');
// The panel's first content (host summary and its open violations) comes back when a selection is closed.
const panelIntro = [...panel.childNodes].map((n) => n.cloneNode(true));

const state = {
  data: null,
  view: pageData.view,
  expanded: new Set(),
  expandedGroups: false,
  focus: pageData.focus ? normaliseBdf(pageData.focus) : null,
  violation: pageData.violation || null,
  selected: null,
  zoom: null,
  svg: null,
  matches: [],
  matchIndex: 0,
};

function normaliseBdf(text) {
  const t = text.trim().toLowerCase();
  return /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(t) ? `0000:${t}` : t;
}

function size() {
  const r = container.getBoundingClientRect();
  return { width: Math.max(320, Math.floor(r.width)), height: Math.max(360, Math.floor(r.height)) };
}

function teardown() {
  if (state.svg) {
    d3.select(state.svg).on('.zoom', null);
    state.svg.remove();
    state.svg = null;
  }
}

function render() {
  teardown();
  const { width, height } = size();
  const data = state.data;
  const focusBdfs = state.focus ? [state.focus] : [];
  let svg;
  if (state.view === 'groups') {
    svg = groupsChart(data, { width, height, violation: state.violation, expandedGroups: state.expandedGroups, focusBdfs });
  } else {
    const { rows } = foldRows(data, { focusBdfs, expanded: state.expanded });
    svg = topologyChart(data, { rows: withMdevs(rows, data.mdevs), width, height, violation: state.violation });
  }
  container.replaceChildren(svg);
  state.svg = svg;
  const layer = d3.select(svg.zoomLayer);
  state.zoom = d3.zoom().scaleExtent([0.15, 4]).on('zoom', (ev) => layer.attr('transform', ev.transform));
  d3.select(svg).call(state.zoom).on('dblclick.zoom', null);
  wireInteractions(svg);
  if (state.focus && centreOn(state.focus, false)) select({ kind: 'device', bdf: state.focus });
  else if (location.hash.startsWith('#group-')) {
    const id = Number(location.hash.slice(7));
    if (centreOnGroup(id)) select({ kind: 'group', id });
  } else if (location.hash.startsWith('#space-')) {
    const key = decodeURIComponent(location.hash.slice(7));
    if (centreOnSpace(key)) select({ kind: 'space', key });
    else fit();
  } else if (location.hash.startsWith('#unit-')) {
    const id = `unit:${decodeURIComponent(location.hash.slice(6))}`;
    if (state.svg.querySelector(`[data-unit="${CSS.escape(id)}"]`)) select({ kind: 'unit', id });
    fit();
  } else fit();
  container.dataset.state = 'ready';
}

function fit() {
  const b = state.svg.bounds;
  const { width, height } = size();
  const fitWidth = width / (b.x1 - b.x0 + 40);
  let k = Math.min(1.25, fitWidth, height / (b.y1 - b.y0 + 40));
  // Shrinking a tall drawing until it fits makes text unreadable: keep it legible and let the user pan down.
  // Fit the width instead (never below 0.55, where 10px labels stop being legible).
  if (state.view === 'groups') k = Math.min(1.1, fitWidth);
  else if (k < 0.65) k = Math.min(1, Math.max(fitWidth, 0.55));
  // Still wider than the box (at 0.55 a DGX's 8 levels and its holder column need ~1800 units; the 870px box
  // of a 1280px-wide window shows ~1500): keep the right end in view, not the left. There stand the deepest
  // devices, the assigned ones the first view opens (charts/collapse.js), and the holders they lead to; the
  // host and IOMMU-unit columns on the left are context one pans to.
  const x = Math.min(20 - b.x0 * k, width - 12 - b.x1 * k);
  const t = d3.zoomIdentity.translate(x, 20 - b.y0 * k).scale(k);
  d3.select(state.svg).call(state.zoom.transform, t);
}

// The whole drawing in the box, however small its labels get: the overview a large host otherwise lacks.
function fitAll() {
  const b = state.svg.bounds;
  const { width, height } = size();
  const k = Math.max(0.15, Math.min(1.25, (width - 24) / (b.x1 - b.x0), (height - 24) / (b.y1 - b.y0)));
  const t = d3.zoomIdentity.translate((width - (b.x1 - b.x0) * k) / 2 - b.x0 * k, 12 - b.y0 * k).scale(k);
  d3.select(state.svg).call(state.zoom.transform, t);
}

function centreAt(x, y, animate) {
  const { width, height } = size();
  const k = 1.1;
  const t = d3.zoomIdentity.translate(width / 2 - x * k, height / 2 - y * k).scale(k);
  const sel = d3.select(state.svg);
  (animate ? sel.transition().duration(350) : sel).call(state.zoom.transform, t);
}

function elementCentre(node) {
  // getBBox is in the element's user space; add the translate of the enclosing groups below the zoom layer.
  const box = node.getBBox();
  let x = box.x + box.width / 2;
  let y = box.y + box.height / 2;
  for (let cur = node; cur && cur !== state.svg.zoomLayer; cur = cur.parentNode) {
    const tr = cur.transform && cur.transform.baseVal.consolidate();
    if (tr) { x += tr.matrix.e; y += tr.matrix.f; }
  }
  return [x, y];
}

function centreOn(bdf, animate = true) {
  const node = state.svg.querySelector(`[data-bdf="${CSS.escape(bdf)}"]`);
  if (!node) return false;
  const [x, y] = elementCentre(node.querySelector('.shape') || node);
  centreAt(x, y, animate);
  return true;
}

function centreOnSpace(key) {
  const node = state.svg.querySelector(`[data-space="${CSS.escape(key)}"]`);
  if (!node) return false;
  const [x, y] = elementCentre(node.querySelector('.space-shape'));
  centreAt(x, y, false);
  return true;
}

function centreOnGroup(id) {
  const node = state.svg.querySelector(`[data-group="${CSS.escape(String(id))}"]`);
  if (!node) return false;
  const [x, y] = elementCentre(node);
  centreAt(x, y, false);
  return true;
}

// What is selected is in the address, so a pasted link opens the same view: a device as ?focus=, anything
// else as a fragment (#group-N, #space-KEY, #unit-NAME); a holder or mdev has no stable address of its own.
function remember(target) {
  const url = new URL(location.href);
  url.searchParams.delete('focus');
  url.hash = '';
  if (target.kind === 'device') url.searchParams.set('focus', target.bdf);
  else if (target.kind === 'group') url.hash = `group-${target.id}`;
  else if (target.kind === 'space') url.hash = `space-${encodeURIComponent(target.key)}`;
  else if (target.kind === 'unit') url.hash = `unit-${encodeURIComponent(target.id.slice(5))}`;
  if (url.href !== location.href) history.replaceState(null, '', url);
}

function select(target) {
  state.selected = target;
  remember(target);
  d3.select(state.svg).selectAll('.selected').classed('selected', false);
  const data = state.data;
  if (target.kind === 'device') {
    const d = data.nodes.find((n) => n.bdf === target.bdf);
    if (!d) return;
    d3.select(state.svg).selectAll(`[data-bdf="${CSS.escape(d.bdf)}"]`).classed('selected', true);
    renderDevicePanel(panel, data, d, pick);
  } else if (target.kind === 'group') {
    const g = data.groups.find((x) => x.id === target.id);
    if (!g) return;
    d3.select(state.svg).selectAll(`[data-group="${CSS.escape(String(g.id))}"]`).classed('selected', true);
    renderGroupPanel(panel, data, g, pick);
  } else if (target.kind === 'holder') {
    const h = data.holders.find((x) => x.pid === target.pid);
    if (h) renderHolderPanel(panel, data, h, pick);
  } else if (target.kind === 'mdev') {
    const m = data.mdevs.find((x) => x.uuid === target.uuid);
    if (!m) return;
    d3.select(state.svg).selectAll(`[data-mdev="${CSS.escape(m.uuid)}"]`).classed('selected', true);
    renderMdevPanel(panel, data, m, pick);
  } else if (target.kind === 'space') {
    const sp = (data.address_spaces || []).find((x) => x.key === target.key);
    if (!sp) return;
    d3.select(state.svg).selectAll(`[data-space="${CSS.escape(sp.key)}"]`).classed('selected', true);
    renderSpacePanel(panel, data, sp, pick);
  } else if (target.kind === 'unit') {
    const u = data.nodes.find((n) => n.id === target.id);
    if (!u) return;
    d3.select(state.svg).selectAll(`[data-unit="${CSS.escape(u.id)}"]`).classed('selected', true);
    renderUnitPanel(panel, data, u);
  }
}

// Pick a device from anywhere (panel links, search): reveal it if folded, centre it, select it.
function pick(bdf) {
  const d = state.data.nodes.find((n) => n.bdf === bdf);
  if (!d) { status.textContent = `${bdf} is not on this host`; return false; }
  state.focus = bdf;
  if (!state.svg.querySelector(`[data-bdf="${CSS.escape(bdf)}"]`)) {
    for (const a of ancestorsOf(state.data, [d.id])) state.expanded.add(a);
    render();
  } else {
    centreOn(bdf);
    select({ kind: 'device', bdf });
  }
  const node = state.svg.querySelector(`[data-bdf="${CSS.escape(bdf)}"]`);
  if (node) node.focus({ preventScroll: true });
  return true;
}

// Escape closes the selection: the panel shows the host summary again, focus returns to the drawing element.
function closeSelection() {
  if (!state.selected) return false;
  const target = state.selected;
  state.selected = null;
  state.focus = null;
  d3.select(state.svg).selectAll('.selected').classed('selected', false);
  panel.replaceChildren(...panelIntro.map((n) => n.cloneNode(true)));
  const url = new URL(location.href);
  url.searchParams.delete('focus');
  url.hash = '';
  history.replaceState(null, '', url);
  const selector = target.kind === 'device' ? `[data-bdf="${CSS.escape(target.bdf)}"]`
    : target.kind === 'group' ? `[data-group="${CSS.escape(String(target.id))}"]`
      : target.kind === 'mdev' ? `[data-mdev="${CSS.escape(target.uuid)}"]`
        : target.kind === 'space' ? `[data-space="${CSS.escape(target.key)}"]`
          : target.kind === 'unit' ? `[data-unit="${CSS.escape(target.id)}"]` : `[data-holder="${CSS.escape(String(target.pid))}"]`;
  const el = state.svg.querySelector(selector);
  if (el) el.focus({ preventScroll: true });
  return true;
}

// Tabbing through a drawing larger than its box: bring the focused element into view.
function revealFocused(ev) {
  const el = ev.target.closest && ev.target.closest('[tabindex]');
  if (!el || !state.svg.contains(el)) return;
  const box = el.getBoundingClientRect();
  const area = container.getBoundingClientRect();
  if (box.left >= area.left && box.right <= area.right && box.top >= area.top && box.bottom <= area.bottom) return;
  const [x, y] = elementCentre(el.querySelector('.shape') || el.querySelector('.group-shape') || el.querySelector('rect') || el);
  centreAt(x, y, false);
}

function activate(target) {
  const el = target.closest('[data-bdf], [data-group], [data-aggregate], [data-holder], [data-mdev], [data-space], [data-unit]');
  if (!el || !state.svg.contains(el)) return;
  if (el.hasAttribute('data-bdf')) select({ kind: 'device', bdf: el.getAttribute('data-bdf') });
  else if (el.hasAttribute('data-group')) select({ kind: 'group', id: Number(el.getAttribute('data-group')) });
  else if (el.hasAttribute('data-holder')) select({ kind: 'holder', pid: Number(el.getAttribute('data-holder')) });
  else if (el.hasAttribute('data-mdev')) select({ kind: 'mdev', uuid: el.getAttribute('data-mdev') });
  else if (el.hasAttribute('data-space')) select({ kind: 'space', key: el.getAttribute('data-space') });
  else if (el.hasAttribute('data-unit')) select({ kind: 'unit', id: el.getAttribute('data-unit') });
  else if (el.hasAttribute('data-aggregate')) {
    const what = el.getAttribute('data-aggregate');
    if (what === 'groups') state.expandedGroups = true; else state.expanded.add(what);
    render();
  }
}

function wireInteractions(svg) {
  svg.addEventListener('click', (ev) => activate(ev.target));
  svg.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); activate(ev.target); }
  });
  svg.addEventListener('focusin', revealFocused);
}

function search(text) {
  const q = text.trim().toLowerCase();
  if (!q) return;
  const devices = state.data.nodes.filter((n) => n.kind === 'device');
  let matches;
  if (/^([0-9a-f]{4}|\*):([0-9a-f]{4}|\*)$/.test(q) && !/^[0-9a-f]{4}:[0-9a-f]{2}$/.test(q)) {
    const [v, dv] = q.split(':');
    matches = devices.filter((d) => { const [a, b] = d.vendor_device.split(':'); return (v === '*' || a === v) && (dv === '*' || b === dv); });
  } else {
    const bdf = normaliseBdf(q);
    matches = devices.filter((d) => d.bdf === bdf);
    if (!matches.length) matches = devices.filter((d) => d.bdf.includes(q));
  }
  state.matches = matches.map((d) => d.bdf);
  state.matchIndex = 0;
  if (!matches.length) { status.textContent = `no device matches ${text}`; return; }
  status.textContent = matches.length > 1 ? `${matches.length} matches; Find again for the next` : '1 match';
  pick(state.matches[0]);
}

function legend() {
  const box = document.getElementById('topology-legend');
  box.replaceChildren();
  const title = document.createElement('h2');
  title.className = 'visually-hidden';
  title.textContent = 'Legend';
  const ul = document.createElement('ul');
  ul.className = 'legend';
  const item = (draw, text) => {
    const li = document.createElement('li');
    const s = d3.create('svg').attr('width', 22).attr('height', 18).attr('aria-hidden', 'true');
    draw(s.append('g').attr('transform', 'translate(11,9)'));
    li.append(s.node(), document.createTextNode(text));
    ul.append(li);
  };
  for (const kind of ['host', 'userspace', 'unbound']) {
    item((g) => g.append('path').attr('d', ownerSymbol(d3, kind, 90)).attr('fill', OWNER[kind].color).attr('stroke', OWNER[kind].stroke || '#222'), OWNER[kind].label);
  }
  item((g) => g.append('rect').attr('x', -9).attr('y', -7).attr('width', 18).attr('height', 14).attr('rx', 4).attr('fill', GROUP_COLOR).attr('fill-opacity', 0.15).attr('stroke', GROUP_COLOR), 'IOMMU group');
  item((g) => g.append('rect').attr('x', -9).attr('y', -7).attr('width', 18).attr('height', 14).attr('rx', 4).attr('fill', 'none').attr('stroke', VIOLATION_COLOR).attr('stroke-width', 2.5).attr('stroke-dasharray', '4 2'), '⚠ violation (hatched, dashed)');
  item((g) => g.append('rect').attr('x', -9).attr('y', -6).attr('width', 18).attr('height', 12).attr('rx', 6).attr('fill', '#fff').attr('stroke', HOLDER_COLOR).attr('stroke-width', 2), 'VM / process holding devices');
  item((g) => g.append('path').attr('d', d3.symbol(d3.symbolTriangle, 90)()).attr('fill', MDEV_COLOR).attr('stroke', '#222'), 'mediated device (mdev)');
  item((g) => g.append('rect').attr('x', -9).attr('y', -6).attr('width', 18).attr('height', 12).attr('rx', 2).attr('class', 'agg-shape'), 'folded devices (Enter to expand)');
  for (const b of Object.values(BACKEND)) {
    item((g) => g.append('rect').attr('x', -9).attr('y', -6).attr('width', 18).attr('height', 12).attr('rx', 2).attr('fill', '#fff').attr('stroke', b.stroke).attr('stroke-width', 2), b.legend);
  }
  item((g) => g.append('rect').attr('x', -9).attr('y', -6).attr('width', 18).attr('height', 12).attr('rx', 2).attr('fill', '#fff').attr('stroke', '#000').attr('stroke-width', 2).attr('stroke-dasharray', '5 3'), 'attachments unknown');
  for (const c of Object.values(CERTAINTY)) {
    item((g) => g.append('path').attr('d', 'M-10,0 L10,0').attr('stroke', '#3d4650').attr('stroke-width', 2).attr('stroke-dasharray', c.dash), c.short);
  }
  box.append(title, ul);
}

function wireToolbar() {
  document.getElementById('topo-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = document.getElementById('topo-q').value;
    if (state.matches.length > 1 && state.lastQuery === text) {
      state.matchIndex = (state.matchIndex + 1) % state.matches.length;
      status.textContent = `match ${state.matchIndex + 1} of ${state.matches.length}`;
      pick(state.matches[state.matchIndex]);
      return;
    }
    state.lastQuery = text;
    search(text);
  });
  for (const radio of document.querySelectorAll('input[name="view"]')) {
    radio.checked = radio.value === state.view;
    radio.addEventListener('change', () => { state.view = radio.value; render(); });
  }
  document.getElementById('topo-reset').addEventListener('click', () => fit());
  document.getElementById('topo-fit').addEventListener('click', () => fitAll());
  document.getElementById('topo-expand-all').addEventListener('click', () => {
    for (const n of state.data.nodes) state.expanded.add(n.id);
    state.expandedGroups = true;
    render();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && closeSelection()) ev.preventDefault();
  });
  let pending = null;
  window.addEventListener('resize', () => { clearTimeout(pending); pending = setTimeout(() => state.data && render(), 200); });
}

async function main() {
  legend();
  wireToolbar();
  const response = await fetch(pageData.topology_url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) {
    container.dataset.state = 'error';
    container.replaceChildren(Object.assign(document.createElement('p'), { textContent: `Could not load the topology (${response.status}).`, className: 'error' }));
    return;
  }
  state.data = await response.json();
  render();
}

main();
