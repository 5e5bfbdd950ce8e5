// The side panel of an address space (a VFIO container or an iommufd context): what it maps and how surely.
import { el, factList, holderText, memberButton, violationBlock } from './panel.js';
import { BACKEND, CERTAINTY, attachedCount, attachedName, kib, spaceName } from '../charts/spaces.js';

function certaintyText(c) {
  return (CERTAINTY[c] || { label: c }).label;
}

export function renderSpacePanel(panel, data, s, onPick) {
  panel.replaceChildren();
  panel.append(el('h2', {}, `Address space: ${spaceName(s)} of pid ${s.pid}`));
  const holder = data.holders.find((h) => h.pid === s.pid);
  const attached = el('ul', { class: 'attachments' });
  for (const a of s.devices) {
    const li = el('li', { 'data-attached': attachedName(a), 'data-certainty': a.certainty });
    li.append('device ', memberButton(a.device, onPick), ` — ${certaintyText(a.certainty)}`);
    attached.append(li);
  }
  for (const a of s.groups) {
    attached.append(el('li', { 'data-attached': attachedName(a), 'data-certainty': a.certainty }, `${attachedName(a)} — ${certaintyText(a.certainty)}`));
  }
  let mapping;
  if (!s.attachment_known) {
    mapping = 'unknown: this holder has several address spaces of this kind, and the kernel does not show which groups or devices each one maps (fdinfo of these fds has no attachment before Linux 6.18)';
  } else mapping = attachedCount(s) ? attached : 'nothing attached that the kernel grants';
  panel.append(factList([
    ['Backend', (BACKEND[s.backend] || { label: s.backend }).label],
    ['Kind', s.kind],
    ['fd', s.fd ?? 'unknown'],
    ['Holder', holder ? holderText(holder) : `pid ${s.pid}`],
    ['VM / workload', s.vm || 'none'],
    ['Pinned memory', s.pinned_kb == null ? "unknown (the holder's VmPin is shared by several address spaces, or not read)" : kib(s.pinned_kb)],
    ['Locked memory', s.locked_kb == null ? 'unknown' : kib(s.locked_kb)],
    ['Maps', mapping],
  ]));
  panel.append(violationBlock(data.violations.filter((v) => v.subject_kind === 'address-space' && v.subject_id === s.key)));
}
