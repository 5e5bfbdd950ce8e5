// Decide what the host drawing shows: small hosts in full; on large ones, subtrees that hold nothing of
// interest (no assigned device, no holder, no violation, no focus) fold into one counted aggregate per parent.

export const FULL_DRAW_LIMIT = 80;
// Past this many drawn devices, even assigned subtrees fold per root complex unless they hold a violation.
export const DRAW_BUDGET = 120;
// When everything folded, root complexes with assigned devices open until about this many devices are drawn.
export const FIRST_VIEW_BUDGET = 48;

export function interestingSets(data, focusBdfs = []) {
  const groupHot = new Set();
  const focus = new Set(focusBdfs);
  const byGroup = new Map();
  for (const n of data.nodes) {
    if (n.kind !== 'device') continue;
    if (n.group != null) {
      if (!byGroup.has(n.group)) byGroup.set(n.group, []);
      byGroup.get(n.group).push(n);
    }
  }
  for (const g of data.groups) {
    const members = byGroup.get(g.id) || [];
    if ((g.violations || []).length || members.some(deviceHot) || members.some((m) => focus.has(m.bdf))) groupHot.add(g.id);
  }
  const hot = new Set();
  const critical = new Set();
  const groupViolated = new Set(data.groups.filter((g) => (g.violations || []).length).map((g) => g.id));
  for (const n of data.nodes) {
    if (n.kind !== 'device') continue;
    if (deviceHot(n) || focus.has(n.bdf) || (n.group != null && groupHot.has(n.group))) hot.add(n.id);
    if ((n.violations || []).length || focus.has(n.bdf) || (n.group != null && groupViolated.has(n.group))) critical.add(n.id);
  }
  return { hot, groupHot, critical };
}

function deviceHot(n) {
  return n.owner_kind === 'userspace' || (n.holders || []).length > 0 || (n.violations || []).length > 0 || !!n.vm
    || (n.mdevs || []).length > 0;
}

// Returns rows ({id, parentId, ...}) to stratify: original rows plus aggregate rows, with folded rows removed.
// `expanded` holds parent ids whose children are all shown.
export function foldRows(data, { focusBdfs = [], expanded = new Set(), limit = FULL_DRAW_LIMIT } = {}) {
  const devices = data.nodes.filter((n) => n.kind === 'device');
  if (devices.length <= limit) return { rows: data.nodes.map((n) => ({ ...n })), folded: 0, opened: new Set() };
  const { hot, critical } = interestingSets(data, focusBdfs);
  const children = new Map();
  for (const n of data.nodes) {
    if (n.parentId == null) continue;
    if (!children.has(n.parentId)) children.set(n.parentId, []);
    children.get(n.parentId).push(n);
  }
  const below = (set) => {
    const memo = new Map();
    const f = (n) => {
      if (memo.has(n.id)) return memo.get(n.id);
      const v = set.has(n.id) || (children.get(n.id) || []).some(f);
      memo.set(n.id, v);
      return v;
    };
    return f;
  };
  const subtreeHot = below(hot);
  const subtreeCritical = below(critical);
  // A root complex holding anything the user expanded is open, or the expansion would show nothing.
  const subtreeExpanded = below(expanded);
  const rows = [];
  let folded = 0;
  let tight = false;
  const opened = new Set();
  const walk = (n) => {
    rows.push({ ...n });
    const kids = children.get(n.id) || [];
    const keep = [];
    const fold = [];
    const strict = tight && n.kind === 'rc' && !subtreeExpanded(n) && !opened.has(n.id);
    for (const k of kids) {
      if (strict) (subtreeCritical(k) ? keep : fold).push(k);
      else if (expanded.has(n.id) || k.kind !== 'device' || subtreeHot(k)) keep.push(k);
      else fold.push(k);
    }
    // Folding a lone leaf saves nothing: draw it.
    if (fold.length === 1 && !(children.get(fold[0].id) || []).length) keep.push(fold.pop());
    keep.forEach(walk);
    if (fold.length) {
      const members = [];
      const collect = (d) => { members.push(d); (children.get(d.id) || []).forEach(collect); };
      fold.forEach(collect);
      const groups = new Set(members.map((d) => d.group).filter((g) => g != null));
      folded += members.length;
      rows.push({
        id: `agg:${n.id}`, parentId: n.id, kind: 'aggregate', expands: n.id,
        count: members.length, group_count: groups.size,
        assigned: members.filter((d) => d.owner_kind === 'userspace').length,
        bdfs: members.map((d) => d.bdf), label: `${members.length} devices`,
      });
    }
  };
  const firstViewRcs = () => {
    const drawn = () => rows.filter((r) => r.kind === 'device').length;
    for (const rc of data.nodes.filter((n) => n.kind === 'rc' && subtreeHot(n))) {
      opened.add(rc.id);
      rows.length = 0;
      folded = 0;
      walk(root);
      if (drawn() > FIRST_VIEW_BUDGET) { opened.delete(rc.id); break; }
    }
    return new Set(opened);
  };
  const root = data.nodes.find((n) => n.parentId == null);
  if (!root) return { rows, folded, opened };
  walk(root);
  if (rows.filter((r) => r.kind === 'device').length > DRAW_BUDGET) {
    rows.length = 0;
    folded = 0;
    tight = true;
    // All folded is a useless first view on a big host with no violation (a DGX: 24 aggregates, no device).
    // Open root complexes holding assigned devices, in order, while the drawing stays readable. The choice
    // is the first view's, whatever the user expanded since, so expanding never hides what was shown.
    const first = expanded.size ? foldRows(data, { focusBdfs, limit }).opened : firstViewRcs();
    first.forEach((id) => opened.add(id));
    rows.length = 0;
    folded = 0;
    walk(root);
  }
  return { rows, folded, opened };
}

// Every ancestor id of the given device ids, so expanding them reveals the devices.
export function ancestorsOf(data, ids) {
  const byId = new Map(data.nodes.map((n) => [n.id, n]));
  const out = new Set();
  for (const id of ids) {
    let cur = byId.get(id);
    while (cur && cur.parentId != null) { out.add(cur.parentId); cur = byId.get(cur.parentId); }
  }
  return out;
}
