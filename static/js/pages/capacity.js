// Capacity finder page: "copy request" puts a pick's pre-flight request body on the clipboard
// (fill in owner.vm, then POST it to /api/v1/preflight). The table itself is server-rendered.
const data = document.getElementById('capacity-picks');
const status = document.getElementById('capacity-copied');

if (data && status) {
  const requests = JSON.parse(data.textContent);
  document.querySelectorAll('button[data-pick]').forEach((button) => {
    button.addEventListener('click', async () => {
      const body = JSON.stringify(requests[Number(button.dataset.pick)], null, 2);
      try {
        await navigator.clipboard.writeText(body);
        status.textContent = 'Pre-flight request copied: set owner.vm, then POST it to /api/v1/preflight.';
      } catch (err) {
        // No clipboard (plain http, or permission refused): show the body to copy by hand, as text.
        status.textContent = body;
      }
    });
  });
}
