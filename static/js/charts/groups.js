// Compact group view: one box per IOMMU group with its member devices as rows; (data, options) -> detached <svg>.
// Boring singleton groups (host driver, no holder, no violation) fold into one counted box on large hosts.
import { OWNER, VIOLATION_COLOR, GROUP_COLOR, HOLDER_COLOR, ownerSymbol } from './palette.js';
import { pickRule, shortBdf, truncate } from './topology.js';
import { interestingSets, FULL_DRAW_LIMIT } from './collapse.js';

const BOX_W = 250;
const LINE = 20;
const HEAD = 26;
const GAP = 14;

export function groupsChart(data, options) {
  const d3 = window.d3;
  const { width = 900, height = 600, expandedGroups = false, focusBdfs = [] } = options;
  const devices = new Map(data.nodes.filter((n) => n.kind === 'device').map((n) => [n.bdf, n]));
  const mdevs = new Map((data.mdevs || []).map((m) => [m.uuid, m]));
  const holderName = new Map(data.holders.map((h) => [h.pid, h.vm || h.workload || h.name]));
  const vmsOf = (g) => [...new Set([...g.members.map((b) => devices.get(b)?.vm),
    ...(g.mdevs || []).flatMap((u) => (mdevs.get(u)?.holders || []).map((pid) => holderName.get(pid)))].filter(Boolean))];
  const { groupHot } = interestingSets(data, focusBdfs);
  const focusGroups = new Set(focusBdfs.map((b) => devices.get(b)?.group).filter((g) => g != null));
  let groups = data.groups.map((g) => ({ ...g, members: [...g.members] }));
  let folded = [];
  if (devices.size > FULL_DRAW_LIMIT && !expandedGroups) {
    folded = groups.filter((g) => g.members.length <= 1 && !groupHot.has(g.id) && !focusGroups.has(g.id));
    const foldedIds = new Set(folded.map((g) => g.id));
    groups = groups.filter((g) => !foldedIds.has(g.id));
  }
  const rank = (g) => (g.violations.length ? 0 : groupHot.has(g.id) ? 1 : g.members.length > 1 ? 2 : 3);
  groups.sort((a, b) => rank(a) - rank(b) || a.id - b.id);

  const cols = Math.max(1, Math.floor((width - GAP) / (BOX_W + GAP)));
  const colY = new Array(cols).fill(GAP);
  const boxes = groups.map((g) => {
    const h = HEAD + LINE * Math.max(1, g.members.length) + (vmsOf(g).length ? LINE : 0) + (g.violations.length ? LINE : 0) + 6;
    const c = colY.indexOf(Math.min(...colY));
    const box = { g, x: GAP + c * (BOX_W + GAP), y: colY[c], h };
    colY[c] += h + GAP;
    return box;
  });
  let aggBox = null;
  if (folded.length) {
    const c = colY.indexOf(Math.min(...colY));
    aggBox = { x: GAP + c * (BOX_W + GAP), y: colY[c], h: HEAD + LINE };
    colY[c] += aggBox.h + GAP;
  }
  const svg = d3.create('svg').attr('class', 'groups-svg').attr('width', width).attr('height', height)
    .attr('viewBox', [0, 0, width, height]).attr('role', 'group').attr('aria-label', `IOMMU groups of ${data.host.hostname}`);
  const layer = svg.append('g').attr('class', 'zoom-layer');
  for (const box of boxes) {
    const { g } = box;
    const rule = pickRule(g.violations, options.violation);
    const el = layer.append('g').attr('transform', `translate(${box.x},${box.y})`);
    const shape = el.append('g').attr('class', `group${g.members.length > 1 ? ' multi' : ''}${rule ? ' has-violation' : ''}`)
      .attr('id', `group-${g.id}`).attr('data-group', g.id).attr('tabindex', 0).attr('role', 'button')
      .attr('aria-label', `IOMMU group ${g.id}, ${g.members.length} devices${g.viable === false && g.claimed ? ', not viable' : ''}${rule ? `, violation ${rule}` : ''}`)
      .datum({ kind: 'group', group: g });
    if (rule) shape.attr('data-violation', rule);
    shape.append('rect').attr('class', 'group-shape').attr('width', BOX_W).attr('height', box.h).attr('rx', 10)
      .attr('fill', rule ? 'url(#hatch-violation-g)' : '#fff').attr('stroke', rule ? VIOLATION_COLOR : GROUP_COLOR);
    shape.append('text').attr('class', 'group-title').attr('x', 10).attr('y', 17)
      .text(`group ${g.id}${g.type ? ` · ${g.type}` : ''}${g.viable === false && g.claimed ? ' · not viable' : ''}${rule ? ' ⚠' : ''}`);
    if (rule) {
      shape.append('text').attr('class', 'group-rule').attr('x', 10).attr('y', box.h - (vmsOf(g).length ? LINE + 10 : 10))
        .text(truncate(`⚠ ${g.violations.join(', ')}`, 33)); // bold 11.5px: 33 characters fill the box
      shape.append('title').text(`group ${g.id}: ${g.violations.join(', ')}`);
    }
    g.members.forEach((bdf, i) => {
      const d = devices.get(bdf);
      const row = el.append('g').attr('class', `node kind-device owner-${d ? d.owner_kind : 'unbound'}`)
        .attr('transform', `translate(18,${HEAD + LINE * i + 10})`);
      if (!d) { row.append('text').attr('x', 12).attr('y', 4).text(`${bdf} (not a PCI function)`); return; }
      const drule = pickRule(d.violations, options.violation);
      row.attr('data-bdf', d.bdf).attr('tabindex', 0).attr('role', 'button')
        .attr('aria-label', `${d.bdf} ${d.label}, driver ${d.driver || 'none'}`).datum({ data: d });
      if (drule) row.attr('data-violation', drule).classed('has-violation', true);
      row.append('rect').attr('class', 'focus-ring').attr('x', -10).attr('y', -10).attr('width', BOX_W - 26).attr('height', LINE).attr('rx', 4);
      const owner = OWNER[d.owner_kind] || OWNER.unbound;
      row.append('path').attr('class', 'shape').attr('d', ownerSymbol(d3, d.owner_kind, 90))
        .attr('fill', owner.color).attr('stroke', owner.stroke || '#222');
      row.append('text').attr('class', 'bdf').attr('x', 12).attr('y', 4).text(shortBdf(d.bdf));
      row.append('text').attr('class', 'sub').attr('x', shortBdf(d.bdf).length > 7 ? 104 : 72).attr('y', 4)
        .text(truncate(`${d.label} · ${d.driver || 'no driver'}`, 26));
    });
    if (!g.members.length) {
      // VFIO's mdev groups and groups of non-PCI devices have no PCI member to list: say what they hold.
      const m = (g.mdevs || []).map((u) => mdevs.get(u)).find(Boolean);
      el.append('text').attr('class', 'sub').attr('x', 18).attr('y', HEAD + 14)
        .text(truncate(m ? `mdev ${m.type_name || m.type} of ${shortBdf(m.parent)}` : 'no PCI function', 38));
    }
    const vms = vmsOf(g);
    if (vms.length) {
      el.append('text').attr('class', 'group-vm').attr('x', 10).attr('y', box.h - 10).attr('fill', HOLDER_COLOR)
        .text(truncate(`held by ${vms.join(', ')}`, 38));
    }
  }
  if (aggBox) {
    const el = layer.append('g').attr('transform', `translate(${aggBox.x},${aggBox.y})`)
      .attr('class', 'node kind-aggregate').attr('data-aggregate', 'groups').attr('data-count', folded.length)
      .attr('tabindex', 0).attr('role', 'button')
      .attr('aria-label', `${folded.length} single-device groups with nothing assigned; press Enter to show`);
    el.append('rect').attr('class', 'agg-shape').attr('width', BOX_W).attr('height', aggBox.h).attr('rx', 10);
    el.append('text').attr('class', 'agg-label').attr('x', 10).attr('y', 28).text(`+ ${folded.length} single-device host groups`);
  }
  svg.append('defs').append('pattern').attr('id', 'hatch-violation-g').attr('patternUnits', 'userSpaceOnUse')
    .attr('width', 8).attr('height', 8).attr('patternTransform', 'rotate(45)')
    .append('rect').attr('width', 3).attr('height', 8).attr('fill', VIOLATION_COLOR).attr('opacity', 0.15);
  const bounds = { x0: 0, y0: 0, x1: GAP + cols * (BOX_W + GAP), y1: Math.max(...colY) };
  return Object.assign(svg.node(), { zoomLayer: layer.node(), bounds });
}
