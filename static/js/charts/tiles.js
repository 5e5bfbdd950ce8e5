// Fleet tile grid: one small square per host coloured by its worst open violation; (data, options) -> detached node.
// SVG (one focusable link per tile) up to SVG_LIMIT hosts, a single <canvas> beyond, so 10,000 hosts stay fast.
import { SEVERITY } from './palette.js';

export const SVG_LIMIT = 1500;

export function tileGeometry(n, width) {
  const cell = Math.max(6, Math.min(22, Math.floor(Math.sqrt((width * 260) / Math.max(1, n)))));
  const cols = Math.max(1, Math.floor(width / cell));
  return { cell, cols, rows: Math.ceil(n / cols) };
}

export function tilesChart(data, options) {
  const d3 = window.d3;
  const { width = 900, hostUrl } = options;
  const n = data.hostnames.length;
  const { cell, cols, rows } = tileGeometry(n, width);
  const colorOf = (i) => SEVERITY[data.severities[data.worst[i]]] || SEVERITY.none;
  const gap = cell > 10 ? 2 : 1;
  if (n <= SVG_LIMIT) {
    const svg = d3.create('svg').attr('width', cols * cell).attr('height', rows * cell)
      .attr('role', 'list').attr('aria-label', `${n} hosts by worst open violation`).attr('class', 'tiles-svg');
    svg.append('defs').append('pattern').attr('id', 'hatch-stale').attr('patternUnits', 'userSpaceOnUse')
      .attr('width', 4).attr('height', 4).append('path').attr('d', 'M0,4 l4,-4').attr('stroke', '#000').attr('stroke-width', 1);
    const a = svg.selectAll('a').data(data.hostnames).join('a')
      .attr('href', (h) => hostUrl(h)).attr('role', 'listitem')
      .attr('aria-label', (h, i) => `${h}: ${data.severities[data.worst[i]]}${data.stale[i] ? ', stale' : ''}`)
      .attr('data-tile-host', (h) => h);
    a.append('title').text((h, i) => `${h} — ${data.severities[data.worst[i]]}${data.stale[i] ? ' (stale)' : ''}`);
    a.append('rect').attr('x', (h, i) => (i % cols) * cell).attr('y', (h, i) => Math.floor(i / cols) * cell)
      .attr('width', cell - gap).attr('height', cell - gap).attr('fill', (h, i) => colorOf(i));
    const index = new Map(data.hostnames.map((h, i) => [h, i]));
    a.filter((h, i) => data.stale[i]).append('rect').attr('x', (h) => (index.get(h) % cols) * cell)
      .attr('y', (h) => Math.floor(index.get(h) / cols) * cell)
      .attr('width', cell - gap).attr('height', cell - gap).attr('fill', 'url(#hatch-stale)');
    return svg.node();
  }
  const canvas = document.createElement('canvas');
  const ratio = window.devicePixelRatio || 1;
  canvas.width = cols * cell * ratio;
  canvas.height = rows * cell * ratio;
  canvas.style.width = `${cols * cell}px`;
  canvas.style.height = `${rows * cell}px`;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `${n} hosts by worst open violation; the table below lists them`);
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  for (let i = 0; i < n; i++) {
    const x = (i % cols) * cell;
    const y = Math.floor(i / cols) * cell;
    ctx.fillStyle = colorOf(i);
    ctx.fillRect(x, y, cell - gap, cell - gap);
    if (data.stale[i]) {
      ctx.strokeStyle = '#000';
      ctx.beginPath(); ctx.moveTo(x, y + cell - gap); ctx.lineTo(x + cell - gap, y); ctx.stroke();
    }
  }
  canvas.hostAt = (px, py) => {
    const i = Math.floor(py / cell) * cols + Math.floor(px / cell);
    return px < cols * cell && i >= 0 && i < n ? i : -1;
  };
  return canvas;
}
