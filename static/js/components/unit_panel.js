// The side panel of an IOMMU unit: what its registers say it can do (the agent decodes cap/ecap or the AMD
// feature words), what it translates, and the host-level findings about it.
import { el, factList, violationBlock } from './panel.js';

// Feature keys as the agent reports them (agent/collectors/iommu_units.py), in words: VT-d cap/ecap bits
// (scalable mode, PASID and its width, PRS, nesting, pass-through, device TLB, caching mode), AMD's GT and PPR.
const FEATURES = [
  ['scalable_mode', 'Scalable mode'],
  ['pasid', 'PASID support'],
  ['pasid_width', 'PASID width'],
  ['page_requests', 'Page requests'],
  ['nesting', 'Nesting'],
  ['pass_through', 'Pass-through'],
  ['device_tlb', 'Device TLB'],
  ['interrupt_remapping', 'Interrupt remapping'],
  ['posted_interrupts', 'Posted interrupts'],
  ['caching_mode', 'Caching mode'],
  ['gt', 'Guest translation'],
  ['ppr', 'Peripheral page requests'],
  ['domains_supported', 'Domains supported'],
  ['domains_used', 'Domains in use'],
];

function shown(value) {
  if (value === true) return 'yes';
  if (value === false) return 'no';
  if (value === null || value === undefined) return '—';  // this vendor's registers do not carry it
  return String(value);
}

export function renderUnitPanel(panel, data, u) {
  panel.replaceChildren();
  if (u.id === 'unit:none') {
    panel.append(el('h2', {}, 'No IOMMU unit'),
      el('p', {}, `${u.device_count || 'These'} devices are translated by no IOMMU unit: nothing isolates their DMA.`));
    return;
  }
  panel.append(el('h2', {}, `IOMMU unit ${u.label}`));
  const features = u.features || {};
  panel.append(factList([
    ['Vendor', u.vendor || 'unknown'],
    ['Devices it translates', String(u.device_count ?? 0)],
    ...FEATURES.map(([key, label]) => [label, shown(features[key])]),
  ]));
  panel.append(violationBlock(data.violations.filter((v) => v.subject_kind === 'unit' && v.subject_id === u.label)));
}
