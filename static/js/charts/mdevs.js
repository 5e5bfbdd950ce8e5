// Mediated devices (vGPU slices, DSA portions…) in the bridge-tree drawing: each mdev a node beside the
// PCI function it is carved from, linked to the VM that holds its VFIO group.
import { MDEV_COLOR } from './palette.js';

// Rows for d3.stratify: the folded device rows plus an mdev row under each drawn parent.
export function withMdevs(rows, mdevs) {
  const drawn = new Set(rows.filter((r) => r.kind === 'device').map((r) => r.id));
  return rows.concat((mdevs || []).filter((m) => m.parentId && drawn.has(m.parentId)).map((m) => ({ ...m, kind: 'mdev' })));
}

export function mdevHolderNames(data, m) {
  return data.holders.filter((h) => m.holders.includes(h.pid)).map((h) => h.vm || h.workload || h.name);
}

export function drawMdev(d3, g, m, data, truncate) {
  const vms = mdevHolderNames(data, m);
  const name = m.type_name || m.type || 'mdev';
  g.attr('data-mdev', m.uuid).attr('tabindex', 0).attr('role', 'button')
    .attr('aria-label', `mediated device ${m.uuid}, ${name}, carved from ${m.parent}${m.group != null ? `, VFIO group ${m.group}` : ''}, ${vms.length ? `held by ${vms.join(', ')}` : 'held by no process'}`);
  g.append('rect').attr('class', 'focus-ring').attr('x', -13).attr('y', -13).attr('width', 176).attr('height', 30).attr('rx', 6);
  g.append('path').attr('class', 'shape').attr('d', d3.symbol(d3.symbolTriangle, 120)())
    .attr('fill', MDEV_COLOR).attr('stroke', '#222');
  g.append('title').text(`mdev ${m.uuid} · ${name} · ${vms.length ? vms.join(', ') : 'not held'}`);
  g.append('text').attr('class', 'bdf').attr('x', 14).attr('y', 1).text(truncate(`mdev ${name}`, 24));
  g.append('text').attr('class', 'sub').attr('x', 14).attr('y', 13)
    .text(truncate(`${m.uuid.slice(0, 8)} · group ${m.group ?? '?'}${vms.length ? '' : ' · free'}`, 30));
}
