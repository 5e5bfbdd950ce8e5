// Fleet page: draws the tile grid from /fleet/tiles.json (the table is server-rendered).
import { tilesChart } from '../charts/tiles.js';

const box = document.getElementById('fleet-tiles');
const hostUrl = (h) => `${box.dataset.hostUrl}${encodeURIComponent(h)}/`;

function tooltip() {
  const tip = document.createElement('div');
  tip.className = 'tile-tip';
  tip.hidden = true;
  box.append(tip);
  return tip;
}

async function main() {
  const response = await fetch(box.dataset.url, { credentials: 'same-origin' });
  if (!response.ok) return;
  const data = await response.json();
  const draw = () => {
    const node = tilesChart(data, { width: Math.max(200, box.clientWidth), hostUrl });
    box.replaceChildren(node);
    if (node.tagName === 'CANVAS') {
      const tip = tooltip();
      node.addEventListener('mousemove', (ev) => {
        const i = node.hostAt(ev.offsetX, ev.offsetY);
        if (i < 0) { tip.hidden = true; return; }
        tip.hidden = false;
        tip.textContent = `${data.hostnames[i]} — ${data.severities[data.worst[i]]}${data.stale[i] ? ' (stale)' : ''}`;
        tip.style.left = `${ev.offsetX + 12}px`;
        tip.style.top = `${ev.offsetY + 12}px`;
      });
      node.addEventListener('mouseleave', () => { tip.hidden = true; });
      node.addEventListener('click', (ev) => {
        const i = node.hostAt(ev.offsetX, ev.offsetY);
        if (i >= 0) location.assign(hostUrl(data.hostnames[i]));
      });
    }
    box.dataset.state = 'ready';
  };
  draw();
  let pending = null;
  window.addEventListener('resize', () => { clearTimeout(pending); pending = setTimeout(draw, 200); });
}

main();
