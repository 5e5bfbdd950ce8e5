// Fleet page: draws the tile grid from /fleet/tiles.json (the table is server-rendered).
import { tilesChart } from '../charts/tiles.js';

const box = document.getElementById('fleet-tiles');
const status = document.getElementById('fleet-tiles-status');
const hostUrl = (h) => `${box.dataset.hostUrl}${encodeURIComponent(h)}/`;

function tooltip() {
  const tip = document.createElement('div');
  tip.className = 'tile-tip';
  tip.hidden = true;
  box.append(tip);
  return tip;
}

async function main() {
  // data-url carries the page's own filters: the tiles show the hosts the table shows.
  const response = await fetch(box.dataset.url, { credentials: 'same-origin' });
  if (!response.ok) return;
  const data = await response.json();
  // Shared by the hover tip and the screen-reader announcement; always set as textContent (hostnames are untrusted).
  const describe = (i) => {
    const sev = data.severities[data.worst[i]];
    const n = data.open[i];
    const open = sev === 'none' ? 'no open violation' : `${n} open violation${n === 1 ? '' : 's'}, worst ${sev}`;
    return `${data.hostnames[i]}: ${open}${data.stale[i] ? ', stale' : ''}`;
  };
  // The keyboard cursor outlives a redraw on resize, so a keyboard user does not lose their place.
  let current = -1;
  let drawnWidth = null;
  const width = () => Math.max(200, box.clientWidth);
  const draw = () => {
    const hadFocus = box.contains(document.activeElement);
    drawnWidth = width();
    const node = tilesChart(data, { width: drawnWidth, hostUrl });
    box.replaceChildren(node);
    if (node.tagName === 'CANVAS') {
      const tip = tooltip();
      node.addEventListener('mousemove', (ev) => {
        const i = node.hostAt(ev.offsetX, ev.offsetY);
        if (i < 0) { tip.hidden = true; return; }
        tip.hidden = false;
        tip.textContent = describe(i);
        tip.style.left = `${ev.offsetX + 12}px`;
        tip.style.top = `${ev.offsetY + 12}px`;
      });
      node.addEventListener('mouseleave', () => { tip.hidden = true; });
      // Mouse focus comes before the click: start the cursor on the pressed tile, not on the first one.
      node.addEventListener('mousedown', (ev) => {
        const i = node.hostAt(ev.offsetX, ev.offsetY);
        if (i >= 0) current = i;
      });
      node.addEventListener('click', (ev) => {
        const i = node.hostAt(ev.offsetX, ev.offsetY);
        if (i >= 0) location.assign(hostUrl(data.hostnames[i]));
      });
      const moveTo = (i) => {
        current = i;
        node.highlight(i);
        status.textContent = describe(i);
      };
      node.addEventListener('focus', () => moveTo(Math.max(0, current)));
      node.addEventListener('blur', () => node.highlight(-1));
      node.addEventListener('keydown', (ev) => {
        if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
        if (ev.key === 'Enter' && current >= 0) {
          ev.preventDefault();
          location.assign(hostUrl(data.hostnames[current]));
          return;
        }
        const next = node.moveFrom(current, ev.key);
        if (next === null) return;
        ev.preventDefault();  // the arrows and Page keys would otherwise scroll the page
        if (next !== current) moveTo(next);
      });
      if (hadFocus) node.focus();
    }
    box.dataset.state = 'ready';
  };
  draw();
  // Only a new width changes the grid. A resize that keeps it (a full-page screenshot's taller viewport, a
  // mobile toolbar) must not replace the canvas under the pointer and the keyboard cursor.
  let pending = null;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = setTimeout(() => { if (width() !== drawnWidth) draw(); }, 200);
  });
}

main();
