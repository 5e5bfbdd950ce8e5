// The host drawing in bridge-tree layout: (data, options) -> detached <svg>.
// data: the topology.json document; options: { rows, focus, violation, width, height, onSelect, onExpand }.
import { OWNER, HOLDER_COLOR, VIOLATION_COLOR, GROUP_COLOR, ownerSymbol } from './palette.js';
import { drawMdev } from './mdevs.js';
import { SPACE_COL, drawSpaceEdges, drawSpaceNodes, placeSpaces } from './spaces.js';

const ROW = 50;
const COL = 200;
const STRUCT_COL = 120; // host, unit and root-complex columns need less room than device columns
const PAD = 12;
const GROUP_GAP = 14; // extra room between rows of different groups, so neighbouring boxes never touch
const HOLDER_W = 190;

export function topologyChart(data, options) {
  const d3 = window.d3;
  const { rows, width = 900, height = 600 } = options;
  const root = d3.stratify().id((d) => d.id).parentId((d) => d.parentId)(rows.map((r) => ({ ...r })));
  layoutRows(root);
  root.each((n) => { n.y = n.depth <= 3 ? n.depth * STRUCT_COL : 3 * STRUCT_COL + (n.depth - 3) * COL; });

  const svg = d3.create('svg')
    .attr('class', 'topology-svg')
    .attr('width', width).attr('height', height)
    .attr('viewBox', [0, 0, width, height])
    .attr('role', 'group')
    .attr('aria-label', `Topology of ${data.host.hostname}`);
  // Patterns so an assigned device or a violation reads without colour.
  const defs = svg.append('defs');
  defs.append('pattern').attr('id', 'hatch-violation').attr('patternUnits', 'userSpaceOnUse')
    .attr('width', 8).attr('height', 8).attr('patternTransform', 'rotate(45)')
    .append('rect').attr('width', 3).attr('height', 8).attr('fill', VIOLATION_COLOR).attr('opacity', 0.18);
  const zoomLayer = svg.append('g').attr('class', 'zoom-layer');

  const nodes = root.descendants();
  const pos = new Map(nodes.map((n) => [n.data.id, { x: n.y, y: n.x, node: n }]));
  const devicePos = new Map();
  for (const n of nodes) if (n.data.kind === 'device') devicePos.set(n.data.bdf, pos.get(n.data.id));

  // Group boxes; layoutRows keeps them from overlapping one another.
  const boxOf = new Map();
  for (const g of data.groups) {
    const pts = g.members.map((b) => devicePos.get(b)).filter(Boolean);
    if (!pts.length) continue;
    boxOf.set(g.id, {
      g, x0: d3.min(pts, (p) => p.x) - PAD, x1: d3.max(pts, (p) => p.x) + COL - 30,
      y0: d3.min(pts, (p) => p.y) - 24, y1: d3.max(pts, (p) => p.y) + 17,
    });
  }

  // Bridge-tree links, behind everything else.
  zoomLayer.append('g').attr('class', 'links')
    .selectAll('path').data(root.links()).join('path')
    .attr('d', d3.linkHorizontal().x((d) => d.y).y((d) => d.x));

  // Holders: one column to the right, each at the mean height of the devices it holds. The column stands
  // where the next device column would (its pill starts at maxX + COL), no further: on a deep tree every unit
  // of width costs, since fit() in pages/host.js never zooms out past the legible 0.55.
  const maxX = d3.max(nodes, (n) => n.y) || 0;
  // With address spaces, their column stands between the devices and the holders.
  const spaceX = maxX + COL + 8;
  const holderX = spaceX + ((data.address_spaces || []).length ? SPACE_COL : 0);
  const withSpace = new Set((data.address_spaces || []).map((s) => s.pid));
  const holders = data.holders.map((h) => {
    const ys = [...h.devices.map((b) => devicePos.get(b)), ...(h.mdevs || []).map((u) => pos.get(`mdev:${u}`))]
      .filter(Boolean).map((p) => p.y);
    return { ...h, x: holderX, y: ys.length ? d3.mean(ys) : null };
  });
  const placedHolders = holders.filter((h) => h.y != null);
  spreadVertically(placedHolders, ROW * 1.6);
  // A holder with address spaces but no device at all (nothing folded away) still stands, below the others.
  let nextY = (d3.max([...placedHolders.map((h) => h.y), ...nodes.map((n) => n.x)]) || 0) + ROW * 1.6;
  for (const h of holders) {
    if (h.y == null && withSpace.has(h.pid) && !h.devices.length && !(h.mdevs || []).length) {
      h.y = nextY;
      nextY += ROW * 1.6;
      placedHolders.push(h);
    }
  }
  const holderPos = new Map(placedHolders.map((h) => [h.id, h]));
  const spaces = placeSpaces(data, { devicePos, boxOf, holderPos, x: spaceX, spread: spreadVertically });
  // A device mapped by one of its holder's drawn spaces leads to the holder through that space instead.
  const viaSpace = new Set(spaces.flatMap((s) => s.devices.map((a) => `dev:${a.device}>holder:${s.pid}`)));
  drawSpaceEdges(d3, zoomLayer, spaces, { devicePos, boxOf });
  zoomLayer.append('g').attr('class', 'holder-edges')
    .selectAll('path').data(data.edges.filter((e) => holderPos.has(e.target) && pos.has(e.source)
      && !viaSpace.has(`${e.source}>${e.target}`))).join('path')
    .attr('d', (e) => {
      const s = pos.get(e.source);
      const t = holderPos.get(e.target);
      return d3.linkHorizontal()({ source: [s.x + 120, s.y], target: [t.x - 8, t.y] });
    })
    .attr('stroke', HOLDER_COLOR);

  // Nodes in tree order (depth first, siblings as layoutRows ordered them, so top to bottom), each group's
  // shape just before its first member: Tab then reads the drawing as the eye does, a group and its devices,
  // instead of every group shape first and then every device. The shape still sits behind its members.
  const nodeLayer = zoomLayer.append('g').attr('class', 'nodes');
  const placed = new Set();
  const nodeEls = [];
  root.eachBefore((n) => {
    const box = n.data.kind === 'device' ? boxOf.get(n.data.group) : null;
    if (box && !placed.has(box.g.id)) {
      placed.add(box.g.id);
      drawGroup(nodeLayer, box, options);
    }
    nodeEls.push(nodeLayer.append('g').datum(n).node());
  });
  const ng = d3.selectAll(nodeEls)
    .attr('transform', (n) => `translate(${n.y},${n.x})`)
    .attr('class', (n) => `node kind-${n.data.kind}${n.data.kind === 'device' ? ` owner-${n.data.owner_kind}` : ''}`);
  ng.filter((n) => n.data.kind === 'device').each(function (n) { drawDevice(d3, d3.select(this), n.data, options); });
  ng.filter((n) => n.data.kind === 'mdev').each(function (n) { drawMdev(d3, d3.select(this), n.data, data, truncate); });
  ng.filter((n) => n.data.kind === 'aggregate').each(function (n) { drawAggregate(d3.select(this), n.data); });
  const hostRules = [...new Set(data.violations.filter((v) => v.subject_kind === 'host').map((v) => v.rule))];
  ng.filter((n) => ['host', 'unit', 'rc'].includes(n.data.kind)).each(function (n) {
    drawStructural(d3.select(this), n.data, n.data.kind === 'host' ? pickRule(hostRules, options.violation) : null);
  });

  // Address spaces, then holders, after the devices, each in the order they stand (top to bottom).
  drawSpaceNodes(zoomLayer, spaces, { truncate, pickRule, violation: options.violation, violationColor: VIOLATION_COLOR });
  const hg = zoomLayer.append('g').attr('class', 'holders')
    .selectAll('g').data(placedHolders).join('g')
    .attr('class', 'holder').attr('data-holder', (h) => h.pid)
    .attr('transform', (h) => `translate(${h.x},${h.y})`)
    .attr('tabindex', 0).attr('role', 'button')
    .attr('aria-label', (h) => `holder ${h.name} pid ${h.pid}${h.vm ? `, VM ${h.vm}` : ''}, tenant ${h.tenant || 'none'}`);
  hg.append('rect').attr('x', -8).attr('y', -14).attr('width', HOLDER_W).attr('height', 28).attr('rx', 14)
    .attr('fill', '#fff').attr('stroke', HOLDER_COLOR).attr('stroke-width', 2);
  hg.append('title').text((h) => `${h.vm || h.workload || h.name} — ${h.kind}, pid ${h.pid}${h.user ? `, user ${h.user}` : ''}, tenant ${h.tenant || 'none'}`);
  hg.append('text').attr('x', 6).attr('y', -1).attr('class', 'holder-name').text((h) => truncate(h.vm || h.workload || h.name, 24));
  hg.append('text').attr('x', 6).attr('y', 10).attr('class', 'sub')
    .text((h) => truncate(`${h.tenant ? `tenant ${h.tenant}` : 'no tenant'} · ${h.kind} · pid ${h.pid}`, 30)); // 10.5px: 30 characters fill the pill
  hg.each(function (h) { d3.select(this).datum({ kind: 'holder', holder: h }); });

  const bounds = {
    x0: -40, y0: (d3.min(nodes, (n) => n.x) || 0) - ROW,
    x1: (placedHolders.length ? holderX + HOLDER_W : maxX + COL), y1: (d3.max([...nodes.map((n) => n.x), ...placedHolders.map((h) => h.y)]) || 0) + ROW,
  };
  return Object.assign(svg.node(), { zoomLayer: zoomLayer.node(), bounds, positions: pos });
}

function drawGroup(layer, { g, x0, x1, y0, y1 }, options) {
  const rule = pickRule(g.violations, options.violation);
  const el = layer.append('g')
    .attr('class', `group${g.members.length > 1 ? ' multi' : ''}${rule ? ' has-violation' : ''}`)
    .attr('id', `group-${g.id}`)
    .attr('data-group', g.id)
    .attr('tabindex', 0).attr('role', 'button')
    .attr('aria-label', `IOMMU group ${g.id}, ${g.members.length} device${g.members.length === 1 ? '' : 's'}${g.viable === false && g.claimed ? ', not viable' : ''}${rule ? `, violation ${rule}` : ''}`);
  if (rule) el.attr('data-violation', rule);
  el.append('rect').attr('class', 'group-shape')
    .attr('x', x0).attr('y', y0).attr('width', x1 - x0).attr('height', y1 - y0).attr('rx', 10)
    .attr('fill', rule ? 'url(#hatch-violation)' : GROUP_COLOR)
    .attr('fill-opacity', rule ? 1 : (g.members.length > 1 ? 0.12 : 0.05))
    .attr('stroke', rule ? VIOLATION_COLOR : GROUP_COLOR);
  el.append('text').attr('class', 'group-label').attr('x', x0 + 8).attr('y', y0 + 11)
    .text(`group ${g.id}${g.type ? ` · ${g.type}` : ''}${rule ? ' ⚠' : ''}`);
  el.datum({ kind: 'group', group: g });
}

// Every leaf gets a row of its own and a parent sits between its first and last child, so a subtree owns a
// contiguous band of rows. Siblings are ordered by IOMMU group, so a group's members (a bridge and what is
// behind it, or the functions of one slot) are one band: group boxes never reach over a neighbour's, which
// d3.tree's compaction of subtrees at different depths did. A change of group between rows adds a gap.
function layoutRows(root) {
  const groupOf = (n) => (n.data.kind === 'device' && n.data.group != null ? n.data.group : null);
  const siblingOrder = (a, b) => {
    const ga = groupOf(a);
    const gb = groupOf(b);
    if (ga !== gb) {
      // A child in its parent's group first, then by group id; nodes without a group keep their place last.
      const pg = groupOf(a.parent);
      if (ga === pg) return -1;
      if (gb === pg) return 1;
      if (ga == null) return 1;
      if (gb == null) return -1;
      return ga - gb;
    }
    return 0; // stable: keeps the server's BDF order within a group
  };
  let next = 0;
  let lastGroup;
  const visit = (n) => {
    if (n.children) {
      n.children.sort(siblingOrder);
      n.children.forEach(visit);
      n.x = (n.children[0].x + n.children[n.children.length - 1].x) / 2;
      return;
    }
    // The mdevs of one parent stand as one band (no gap between them): they are its slices, not groups of their own.
    const g = groupOf(n) ?? (n.data.kind === 'mdev' ? `mdevs:${n.data.parentId}` : `leaf:${n.data.id}`);
    if (lastGroup !== undefined) next += ROW + (g !== lastGroup ? GROUP_GAP : 0);
    lastGroup = g;
    n.x = next;
  };
  visit(root);
}

export function pickRule(rules, preferred) {
  if (!rules || !rules.length) return null;
  return preferred && rules.includes(preferred) ? preferred : rules[0];
}

function drawDevice(d3, g, d, options) {
  const rule = pickRule(d.violations, options.violation);
  const owner = OWNER[d.owner_kind] || OWNER.unbound;
  g.attr('data-bdf', d.bdf).attr('tabindex', 0).attr('role', 'button')
    .attr('aria-label', `${d.bdf} ${d.vendor} ${d.vendor_device} ${d.label}, driver ${d.driver || 'none'}, ${owner.label}${d.group != null ? `, group ${d.group}` : ''}${rule ? `, violation ${rule}` : ''}`);
  if (rule) g.attr('data-violation', rule).classed('has-violation', true);
  // Shown only when focused or selected (CSS): a 10px symbol's thicker stroke alone is easy to miss.
  g.append('rect').attr('class', 'focus-ring').attr('x', -13).attr('y', -13).attr('width', 176).attr('height', 30).attr('rx', 6);
  if (rule) g.append('circle').attr('class', 'violation-ring').attr('r', 13).attr('stroke', VIOLATION_COLOR);
  g.append('path').attr('class', 'shape').attr('d', ownerSymbol(d3, d.owner_kind))
    .attr('fill', owner.color).attr('stroke', owner.stroke || '#222');
  g.append('title').text(`${d.bdf} · ${d.vendor} ${d.vendor_device} ${d.label} · driver ${d.driver || 'none'}${d.vm ? ` · ${d.vm}` : ''}`);
  g.append('text').attr('class', 'bdf').attr('x', 14).attr('y', 1).text(shortBdf(d.bdf));
  g.append('text').attr('class', 'sub').attr('x', 14).attr('y', 13)
    .text(truncate(`${d.label} · ${d.driver || 'no driver'}${d.sriov ? ` · ${d.sriov.role.toUpperCase()}` : ''}`, 30));
  if (rule) g.append('text').attr('class', 'warn').attr('x', -22).attr('y', 5).text('⚠');
}

function drawAggregate(g, d) {
  g.attr('data-aggregate', d.expands).attr('data-count', d.count).attr('tabindex', 0).attr('role', 'button')
    .attr('aria-label', `${d.count} folded devices in ${d.group_count} groups, ${d.assigned} assigned, no violation; press Enter to expand`);
  g.append('rect').attr('class', 'agg-shape').attr('x', -8).attr('y', -13).attr('width', 170).attr('height', 28).attr('rx', 4);
  g.append('text').attr('class', 'agg-label').attr('x', 0).attr('y', -1).text(`+ ${d.count} devices · ${d.group_count} groups`);
  g.append('text').attr('class', 'sub').attr('x', 0).attr('y', 11).text(d.assigned ? `${d.assigned} assigned, no violation` : 'nothing assigned');
}

function drawStructural(g, d, rule) {
  if (rule) {
    // A host-level violation (no IOMMU, unsafe interrupts…) marks the host node itself.
    g.attr('data-violation', rule).classed('has-violation', true).attr('tabindex', 0).attr('role', 'img')
      .attr('aria-label', `host ${d.label}: violation ${rule}`);
    g.append('circle').attr('class', 'violation-ring').attr('r', 14).attr('stroke', VIOLATION_COLOR);
    g.append('text').attr('class', 'warn').attr('x', -24).attr('y', 5).text('⚠');
  }
  g.append('rect').attr('class', 'struct-shape').attr('x', -6).attr('y', -9).attr('width', 12).attr('height', 18);
  const label = d.kind === 'unit' ? `${d.label}${d.vendor ? ` (${d.vendor})` : ''}` : d.label;
  if (d.kind === 'unit') {
    // A unit opens its panel (features, PASID width): focusable like the devices it translates.
    g.attr('data-unit', d.id).attr('tabindex', 0).attr('role', 'button')
      .attr('aria-label', `IOMMU unit ${label}: its features`);
  }
  // Structural columns are narrow: labels go above (host, root complex) or below (unit) so neighbours never collide.
  g.append('text').attr('class', `struct-label kind-${d.kind}`).attr('x', -6).attr('y', d.kind === 'unit' ? 24 : -14)
    .text(truncate(label, 30));
  g.append('title').text(label);
}

function spreadVertically(items, gap) {
  items.sort((a, b) => a.y - b.y);
  for (let i = 1; i < items.length; i++) if (items[i].y - items[i - 1].y < gap) items[i].y = items[i - 1].y + gap;
}

export function shortBdf(bdf) { return bdf && bdf.startsWith('0000:') ? bdf.slice(5) : bdf; }
export function truncate(s, n) { s = String(s ?? ''); return s.length > n ? `${s.slice(0, n - 1)}…` : s; }
