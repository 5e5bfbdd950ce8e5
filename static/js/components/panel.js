// The host page's side panel: every fact of the selected device, group or holder, built with textContent only.
import { attachedCount, kib, spaceName } from '../charts/spaces.js';

export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = String(text);
  return node;
}

export function factList(pairs) {
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.append(el('dt', {}, k));
    const dd = el('dd');
    if (v instanceof Node) dd.append(v); else dd.textContent = v === null || v === '' ? 'unknown' : String(v);
    dl.append(dd);
  }
  return dl;
}

function yesNo(x) { return x == null ? 'unknown' : x ? 'yes' : 'no'; }

function capText(c, withWidth = false) {
  if (c == null) return 'unknown (extended config space not readable)';
  if (!c.present) return 'absent';
  let s = c.enabled == null ? 'present' : c.enabled ? 'present, enabled' : 'present, disabled';
  if (withWidth && c.width != null) s += `, width ${c.width}`;
  return s;
}

function acsText(a) {
  if (a == null) return 'unknown (extended config space not readable)';
  if (!a.present) return 'absent';
  return `cap ${a.cap.join(' ') || '—'} · ctl ${a.ctl.join(' ') || '—'}`;
}

export function violationBlock(list) {
  const wrap = el('div', { class: 'panel-violations' });
  wrap.append(el('h3', {}, list.length ? `Open violations (${list.length})` : 'No open violations'));
  const ul = el('ul', { class: 'violation-list' });
  for (const v of list) {
    const li = el('li', { class: `sev-border-${v.severity}` });
    li.append(el('span', { class: `badge sev-${v.severity}` }, v.severity), ' ', el('code', {}, v.rule));
    li.append(el('p', {}, v.message));
    if (v.remediation) { const p = el('p', { class: 'remediation' }); p.append(el('strong', {}, 'Fix: '), v.remediation); li.append(p); }
    ul.append(li);
  }
  wrap.append(ul);
  return wrap;
}

export function memberButton(bdf, onPick) {
  const b = el('button', { type: 'button', class: 'linkish', 'data-pick-bdf': bdf }, bdf);
  b.addEventListener('click', () => onPick(bdf));
  return b;
}

export function holderText(h) {
  return `${h.vm || h.workload || h.name} (pid ${h.pid}, ${h.kind}${h.user ? `, user ${h.user}` : ''}, tenant ${h.tenant || 'none declared'})`;
}

export function textList(items, cls) {
  const ul = el('ul', cls ? { class: cls } : {});
  for (const t of items) ul.append(el('li', {}, t));
  return ul;
}

// Viable or not, and why: the ownership model's verdict and the agent's explanation of the grouping.
function viabilityBlock(g) {
  const wrap = el('div', { class: 'group-viability', 'data-viable': g.viable == null ? 'n/a' : String(g.viable) });
  const verdict = g.viable == null ? 'Viability: not applicable' : g.viable ? 'Viable' : 'Not viable';
  wrap.append(el('h3', {}, verdict));
  wrap.append(el('p', { class: 'viability-reason' }, g.viability || 'unknown'));
  if (g.viable === false && !g.claimed) {
    wrap.append(el('p', { class: 'muted' }, 'No member is given to userspace and no process opens the group: the host keeps it, which is fine until one of its devices is to be assigned.'));
  }
  const blockers = Object.entries(g.blockers || {});
  if (blockers.length) wrap.append(textList(blockers.map(([b, drv]) => `${b} is on ${drv}, a host DMA driver`), 'blockers'));
  if ((g.why_shared || []).length) {
    wrap.append(el('h4', {}, g.members.length > 1 ? 'Why these devices share the group' : 'Isolation'));
    wrap.append(textList(g.why_shared, 'why-shared'));
  }
  return wrap;
}

export function renderDevicePanel(panel, data, d, onPick) {
  panel.replaceChildren();
  panel.append(el('h2', {}, `Device ${d.bdf}`));
  const group = data.groups.find((g) => g.id === d.group);
  const members = el('span');
  (group ? group.members : []).forEach((b, i) => { if (i) members.append(', '); members.append(b === d.bdf ? el('strong', {}, b) : memberButton(b, onPick)); });
  const holders = data.holders.filter((h) => d.holders.includes(h.pid));
  const sr = d.sriov;
  let sriovNode;
  if (sr && sr.role === 'vf') { sriovNode = el('span'); sriovNode.append('VF of ', memberButton(sr.physfn, onPick)); }
  else if (sr) { sriovNode = el('span'); sriovNode.append(`PF, ${sr.num_vfs ?? '?'} of ${sr.total_vfs ?? '?'} VFs enabled`); if (sr.vfs.length) { sriovNode.append(': '); sr.vfs.forEach((b, i) => { if (i) sriovNode.append(', '); sriovNode.append(memberButton(b, onPick)); }); } }
  panel.append(factList([
    ['Device', `${d.vendor} ${d.label}`],
    ['Vendor:device', d.vendor_device],
    ['Subsystem', d.subsystem],
    ['Class', d.class],
    ['Revision', d.revision],
    ['Driver', d.driver || '(none)'],
    ['VFIO cdev', d.cdev ? `/dev/vfio/devices/${d.cdev}` : 'none (no VFIO cdev for this device)'],
    ['driver_override', d.driver_override || '(not set)'],
    ['Owner', { host: 'host driver', userspace: 'VFIO / userspace', unbound: 'no driver' }[d.owner_kind] || d.owner_kind],
    ['VM / holder', holders.length ? holders.map(holderText).join('; ') : (d.vm || 'none')],
    ['mdevs carved from it', (d.mdevs || []).length ? `${d.mdevs.length}: ${d.mdevs.join(', ')}` : undefined],
    ['IOMMU group', d.group == null ? 'none' : `${d.group}${group && group.type ? ` (${group.type})` : ''}`],
    ['Group members', group ? members : 'none'],
    ['IOMMU unit', d.unit || 'none'],
    ['NUMA node', d.numa_node ?? 'unknown'],
    ['Link', d.link && d.link.current_speed ? `${d.link.current_speed} x${d.link.current_width ?? '?'} (max ${d.link.max_speed ?? '?'} x${d.link.max_width ?? '?'})` : 'unknown'],
    ['PCIe port type', d.caps.port_type || (d.bridge ? 'bridge' : 'unknown')],
    ['ACS', acsText(d.caps.acs)],
    ['ATS', capText(d.caps.ats)],
    ['PRI', capText(d.caps.pri)],
    ['PASID', capText(d.caps.pasid, true)],
    ['SR-IOV', sriovNode || 'no'],
    ['Config bytes read', d.caps.config_bytes ?? 'unknown'],
  ]));
  panel.append(violationBlock(data.violations.filter((v) => v.device === d.bdf || (v.group != null && v.group === d.group))));
}

export function renderGroupPanel(panel, data, g, onPick) {
  panel.replaceChildren();
  panel.append(el('h2', {}, `IOMMU group ${g.id}`));
  const devices = new Map(data.nodes.filter((n) => n.kind === 'device').map((n) => [n.bdf, n]));
  const ul = el('ul', { class: 'members' });
  for (const b of g.members) {
    const d = devices.get(b);
    const li = el('li');
    li.append(memberButton(b, onPick), ` ${d ? `${d.label} · ${d.driver || 'no driver'}${d.vm ? ` · ${d.vm}` : ''}` : ''}`);
    ul.append(li);
  }
  const owners = new Set(g.members.map((b) => devices.get(b)?.owner_kind).filter(Boolean));
  panel.append(factList([
    ['Default domain type', g.type || 'unknown'],
    ['Name', g.name || undefined],
    ['IOMMU unit', g.unit || 'unknown'],
    ['Owners', [...owners].join(', ') || 'none'],
    ['Members', g.members.length ? ul : 'no PCI function'],
    ['mdevs', (g.mdevs || []).length ? g.mdevs.join(', ') : undefined],
    ['Reserved regions', g.reserved_regions.length ? g.reserved_regions.map((r) => `${r.start}–${r.end} ${r.type}`).join('; ') : 'none'],
  ]));
  panel.append(viabilityBlock(g));
  panel.append(violationBlock(data.violations.filter((v) => v.group === g.id || g.members.includes(v.device))));
}

export function renderHolderPanel(panel, data, h, onPick) {
  panel.replaceChildren();
  panel.append(el('h2', {}, `Holder ${h.name} (pid ${h.pid})`));
  const devs = el('span');
  h.devices.forEach((b, i) => { if (i) devs.append(', '); devs.append(memberButton(b, onPick)); });
  panel.append(factList([
    ['Kind', h.kind], ['VM', h.vm || 'none'], ['Workload', h.workload || 'none'],
    ['Tenant', h.tenant || 'none declared matches (intent tenants: vm, cgroup, workload patterns)'],
    ['User', h.user ? `${h.user} (uid ${h.uid})` : (h.uid ?? 'unknown')],
    ['Device nodes', h.nodes.join(', ') || 'none'], ['VFIO groups', h.groups.join(', ') || 'none'],
    ['Device fds', h.device_fds], ['Devices', h.devices.length ? devs : 'none'],
    ['mdevs', (h.mdevs || []).length ? h.mdevs.join(', ') : undefined],
    ['Address spaces', spacesOf(data, h.pid).map((s) => `${spaceName(s)} (${s.attachment_known ? `${attachedCount(s)} attached` : 'attachments unknown'}, pinned ${kib(s.pinned_kb)})`).join('; ') || 'none'],
  ]));
}

function spacesOf(data, pid) {
  return (data.address_spaces || []).filter((s) => s.pid === pid);
}

export function renderMdevPanel(panel, data, m, onPick) {
  panel.replaceChildren();
  panel.append(el('h2', {}, `Mediated device ${m.uuid}`));
  const parent = el('span');
  parent.append(memberButton(m.parent, onPick));
  const holders = data.holders.filter((h) => m.holders.includes(h.pid));
  panel.append(factList([
    ['Type', m.type_name ? `${m.type_name} (${m.type})` : m.type],
    ['Parent device', parent],
    ['VFIO group', m.group ?? 'none'],
    ['Held by', holders.length ? holders.map(holderText).join('; ') : 'no process holds its group'],
    ['Isolation', "the parent's driver separates mdevs, not the IOMMU: every mdev of one parent shares its DMA path"],
  ]));
  panel.append(violationBlock(data.violations.filter((v) => v.device === m.parent || (v.group != null && v.group === m.group))));
}
