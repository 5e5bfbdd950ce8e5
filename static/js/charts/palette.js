// Okabe–Ito colours (readable with the common colour-vision deficiencies); every colour also has a shape or pattern.
export const OWNER = {
  host: { color: '#0072B2', shape: 'circle', label: 'host driver' },
  userspace: { color: '#E69F00', shape: 'square', label: 'VFIO / userspace' },
  unbound: { color: '#FFFFFF', stroke: '#555555', shape: 'diamond', label: 'no driver' },
};
export const HOLDER_COLOR = '#CC79A7';
export const VIOLATION_COLOR = '#D55E00';
export const GROUP_COLOR = '#56B4E9';
export const MDEV_COLOR = '#009E73'; // mediated devices, drawn as triangles
export const SEVERITY = {
  critical: '#D55E00', high: '#E69F00', medium: '#F0E442', low: '#56B4E9', info: '#999999', none: '#009E73',
};

// A d3 symbol path for an owner kind, centred at 0,0.
export function ownerSymbol(d3, kind, size = 150) {
  const type = { circle: d3.symbolCircle, square: d3.symbolSquare, diamond: d3.symbolDiamond }[(OWNER[kind] || OWNER.unbound).shape];
  return d3.symbol(type, size)();
}
