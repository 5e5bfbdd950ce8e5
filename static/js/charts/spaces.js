// The address-space layer of the bridge-tree drawing: between the devices and their holders, one node per VFIO
// container or iommufd context (topology.json `address_spaces`), an edge per stored attachment styled by how
// certain it is, and an edge to the holder. A space whose attachments the kernel does not show is drawn
// dashed and says so; no attachment is drawn that the inventory does not hold.

export const SPACE_W = 170;
export const SPACE_COL = SPACE_W + 70; // the column's width, edges to the holders included
const SPACE_GAP = 44;
export const CERTAINTY = {
  kernel: { label: 'kernel-proven (a kernel link or fdinfo)', short: 'attached, kernel-proven', dash: null },
  argv: { label: "from the holder's own arguments (QEMU, libvirt, DPDK)", short: 'attached, from arguments', dash: '7 4' },
  inferred: { label: 'inferred (only the held fd says so)', short: 'attached, inferred', dash: '2 4' },
};
export const BACKEND = {
  legacy: { label: 'legacy VFIO container (type1)', short: 'VFIO container', legend: 'VFIO container (legacy)', stroke: '#000000' },
  iommufd: { label: 'iommufd context', short: 'iommufd', legend: 'iommufd context', stroke: '#0072B2' },
};

export function kib(kb) {
  if (kb == null) return 'unknown';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = kb;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function spaceName(s) {
  return `${(BACKEND[s.backend] || { short: s.kind }).short}${s.fd != null ? ` fd ${s.fd}` : ''}`;
}

// What an attachment maps, as the hooks and the panel name it: "device 0000:02:00.0" or "group 5".
export function attachedName(a) {
  return a.device != null ? `device ${a.device}` : `group ${a.group}`;
}

export function attachedCount(s) {
  return s.devices.length + s.groups.length;
}

// Spaces of drawn holders, each at the mean height of what it maps (else at its holder's), spread apart.
export function placeSpaces(data, { devicePos, boxOf, holderPos, x, spread }) {
  const out = [];
  for (const s of data.address_spaces || []) {
    const holder = holderPos.get(`holder:${s.pid}`);
    if (!holder) continue;
    const ends = [...s.devices.map((a) => devicePos.get(a.device)), ...s.groups.map((a) => groupEnd(boxOf.get(a.group)))].filter(Boolean);
    const y = ends.length ? ends.reduce((t, p) => t + p.y, 0) / ends.length : holder.y;
    out.push({ ...s, x, y, holder });
  }
  spread(out, SPACE_GAP);
  return out;
}

function groupEnd(box) {
  return box ? { x: box.x1, y: (box.y0 + box.y1) / 2 } : null;
}

// Device and group -> space, and space -> holder; behind the nodes.
export function drawSpaceEdges(d3, layer, spaces, { devicePos, boxOf }) {
  const link = d3.linkHorizontal();
  const rows = [];
  for (const s of spaces) {
    for (const a of s.devices) {
      const p = devicePos.get(a.device);
      if (p) rows.push({ space: s.key, what: attachedName(a), certainty: a.certainty, from: [p.x + 120, p.y], to: [s.x, s.y] });
    }
    for (const a of s.groups) {
      const end = groupEnd(boxOf.get(a.group));
      if (end) rows.push({ space: s.key, what: attachedName(a), certainty: a.certainty, from: [end.x, end.y], to: [s.x, s.y] });
    }
  }
  const g = layer.append('g').attr('class', 'space-edges');
  g.selectAll('path.attachment').data(rows).join('path')
    .attr('class', (r) => `attachment certainty-${r.certainty}`)
    .attr('data-space-of', (r) => r.space).attr('data-attached', (r) => r.what).attr('data-certainty', (r) => r.certainty)
    .attr('stroke-dasharray', (r) => (CERTAINTY[r.certainty] || CERTAINTY.inferred).dash)
    .attr('d', (r) => link({ source: r.from, target: r.to }));
  g.selectAll('path.space-holder').data(spaces).join('path').attr('class', 'space-holder')
    .attr('d', (s) => link({ source: [s.x + SPACE_W, s.y], target: [s.holder.x - 8, s.holder.y] }));
}

export function drawSpaceNodes(layer, spaces, { truncate, pickRule, violation, violationColor }) {
  const ruleOf = (s) => pickRule(s.violations, violation);
  const g = layer.append('g').attr('class', 'spaces').selectAll('g').data(spaces).join('g')
    .attr('class', (s) => `space backend-${s.backend}${s.attachment_known ? '' : ' attachment-unknown'}${ruleOf(s) ? ' has-violation' : ''}`)
    .attr('data-space', (s) => s.key).attr('id', (s) => `space-${s.key}`).attr('data-violation', ruleOf)
    .attr('transform', (s) => `translate(${s.x},${s.y})`)
    .attr('tabindex', 0).attr('role', 'button')
    .attr('aria-label', (s) => `address space: ${(BACKEND[s.backend] || { label: s.kind }).label}${s.fd != null ? ` fd ${s.fd}` : ''} of pid ${s.pid}${s.vm ? ` (${s.vm})` : ''}, pinned ${kib(s.pinned_kb)}, ${s.attachment_known ? `${attachedCount(s)} attached` : 'attachments unknown'}${ruleOf(s) ? `, violation ${ruleOf(s)}` : ''}`);
  g.append('rect').attr('class', 'focus-ring').attr('x', -5).attr('y', -18).attr('width', SPACE_W + 10).attr('height', 36).attr('rx', 6);
  g.append('rect').attr('class', 'space-shape').attr('x', 0).attr('y', -14).attr('width', SPACE_W).attr('height', 28).attr('rx', 3)
    .attr('fill', (s) => (ruleOf(s) ? 'url(#hatch-violation)' : '#fff'))
    .attr('stroke', (s) => (ruleOf(s) ? violationColor : (BACKEND[s.backend] || BACKEND.legacy).stroke))
    .attr('stroke-dasharray', (s) => (s.attachment_known ? null : '5 3'));
  g.append('title').text((s) => `${spaceName(s)} · pid ${s.pid}${s.vm ? ` · ${s.vm}` : ''} · pinned ${kib(s.pinned_kb)}`);
  g.append('text').attr('class', 'space-name').attr('x', 6).attr('y', -2).text((s) => truncate(`${spaceName(s)}${ruleOf(s) ? ' ⚠' : ''}`, 26));
  g.append('text').attr('class', 'sub').attr('x', 6).attr('y', 10)
    .text((s) => truncate(`${s.attachment_known ? `${attachedCount(s)} attached` : 'attachments unknown'} · pinned ${kib(s.pinned_kb)}`, 30));
}
