// Fleet tile grid: one small square per host coloured by its worst open violation; (data, options) -> detached node.
// SVG (one focusable link per tile) up to SVG_LIMIT hosts, a single <canvas> beyond, so 10,000 hosts stay fast.
import { SEVERITY } from './palette.js';

export const SVG_LIMIT = 1500;
// Up to this many hosts every tile carries its hostname, under a heading per severity: a small fleet reads as a list.
export const LABEL_LIMIT = 120;
const PAGE_ROWS = 5;

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
  if (n <= LABEL_LIMIT) return labelledTiles(data, hostUrl);
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
  // One focusable widget instead of thousands of links; "application" so screen readers in browse mode
  // hand the arrow keys to the page, which announces the current host in a live region.
  canvas.tabIndex = 0;
  canvas.className = 'tiles-canvas';
  canvas.setAttribute('role', 'application');
  canvas.setAttribute('aria-roledescription', 'host grid');
  canvas.setAttribute('aria-label', `${n} hosts by worst open violation. Arrow keys move between hosts, `
    + 'Home and End go to the first and last, Page Up and Page Down move several rows, Enter opens the host. '
    + 'The table below lists them too.');
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  // Cells past the last host are only cleared: the cursor's ring can spill onto them.
  const paint = (i) => {
    const x = (i % cols) * cell;
    const y = Math.floor(i / cols) * cell;
    ctx.clearRect(x, y, cell, cell);
    if (i >= n) return;
    ctx.fillStyle = colorOf(i);
    ctx.fillRect(x, y, cell - gap, cell - gap);
    if (data.stale[i]) {
      ctx.lineWidth = 1;
      ctx.strokeStyle = '#000';
      ctx.beginPath(); ctx.moveTo(x, y + cell - gap); ctx.lineTo(x + cell - gap, y); ctx.stroke();
    }
  };
  for (let i = 0; i < n; i++) paint(i);
  canvas.hostAt = (px, py) => {
    const i = Math.floor(py / cell) * cols + Math.floor(px / cell);
    return px < cols * cell && i >= 0 && i < n ? i : -1;
  };
  // The cursor is a black ring outside the tile (tiles are as small as 6 px, too small to mark inside
  // while keeping their colour) with a white line inside it, so it shows on every severity colour.
  const ring = (i) => {
    const x = (i % cols) * cell;
    const y = Math.floor(i / cols) * cell;
    const side = cell - gap;
    ctx.lineWidth = 3;
    ctx.strokeStyle = '#000';
    ctx.strokeRect(x - 1.5, y - 1.5, side + 3, side + 3);
    ctx.lineWidth = 1;
    ctx.strokeStyle = '#fff';
    ctx.strokeRect(x + 0.5, y + 0.5, side - 1, side - 1);
  };
  // The ring reaches at most 3 px (< the 6 px minimum cell) past its cell, so repainting the 3x3 block wipes it.
  const repaintAround = (i) => {
    const col = i % cols;
    const row = Math.floor(i / cols);
    for (let r = Math.max(0, row - 1); r <= Math.min(rows - 1, row + 1); r++) {
      for (let c = Math.max(0, col - 1); c <= Math.min(cols - 1, col + 1); c++) paint(r * cols + c);
    }
  };
  let highlighted = -1;
  canvas.highlight = (i) => {
    if (highlighted >= 0) repaintAround(highlighted);
    highlighted = i >= 0 && i < n ? i : -1;
    if (highlighted >= 0) ring(highlighted);
  };
  // Up/Down/PageUp/PageDown keep the column and stop at the grid's edge rather than wrapping.
  canvas.moveFrom = (i, key) => {
    const row = Math.floor(i / cols);
    const rowsBelow = Math.floor((n - 1 - i) / cols);
    switch (key) {
      case 'ArrowLeft': return Math.max(0, i - 1);
      case 'ArrowRight': return Math.min(n - 1, i + 1);
      case 'ArrowUp': return row > 0 ? i - cols : i;
      case 'ArrowDown': return rowsBelow > 0 ? i + cols : i;
      case 'PageUp': return i - cols * Math.min(PAGE_ROWS, row);
      case 'PageDown': return i + cols * Math.min(PAGE_ROWS, rowsBelow);
      case 'Home': return 0;
      case 'End': return n - 1;
      default: return null;
    }
  };
  return canvas;
}

// The hosts come worst first (the server's order), so each severity is one run: a heading, then its hosts.
// Every string is set as textContent: hostnames are untrusted.
function labelledTiles(data, hostUrl) {
  const root = document.createElement('div');
  root.className = 'tiles-labelled';
  let list = null;
  let shown = null;
  data.hostnames.forEach((hostname, i) => {
    const sev = data.severities[data.worst[i]];
    if (sev !== shown) {
      shown = sev;
      const count = data.worst.filter((w) => w === data.worst[i]).length;
      const heading = document.createElement('h3');
      heading.className = `tiles-group sev-text-${sev}`;
      heading.textContent = `${sev === 'none' ? 'no open violation' : sev} (${count})`;
      list = document.createElement('ul');
      list.className = 'tile-chips';
      root.append(heading, list);
    }
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.href = hostUrl(hostname);
    link.className = `tile-chip sev-${sev}${data.stale[i] ? ' stale' : ''}`;
    link.dataset.tileHost = hostname;
    link.textContent = hostname;
    const n = data.open[i];
    link.title = `${hostname}: ${sev === 'none' ? 'no open violation' : `${n} open, worst ${sev}`}${data.stale[i] ? ', stale' : ''}`;
    if (data.stale[i]) {
      const mark = document.createElement('span');
      mark.className = 'visually-hidden';
      mark.textContent = ' (stale)';
      link.append(mark);
    }
    item.append(link);
    list.append(item);
  });
  if (!data.hostnames.length) {
    const empty = document.createElement('p');
    empty.textContent = 'No host matches these filters.';
    root.append(empty);
  }
  return root;
}
