// The HAVIP pages: the list (filters, paging, the Apply dialog) and the details page (switch
// range, EIP, keepalived configuration, ARP rejections, delete).

import { h, fill, id } from './dom.js';
import { t, time } from './i18n.js';
import { call, query } from './api.js';
import {
  table, pager, errorBox, showError, announce, field, modal, parseIPv4, formatIPv4, usableRange,
} from './ui.js';

const maxRange = 10; // a switch range holds at most 10 instances

// A notice to show on the next list (the release notice after a delete).
let pendingNotice = '';

function stateCell(v) {
  if (v.state !== 'BIND') return h('span', { class: 'state unbound', 'data-state': 'UNBIND' }, t('state.unbound'));
  return h('span', { class: 'state bound', 'data-state': 'BIND' },
    h('span', { class: 'state-label' }, t('state.bound')),
    h('span', { class: 'state-owner' }, t('state.ownerEni', { eni: v.network_interface_id })),
    h('span', { class: 'state-owner' }, t('state.ownerCvm', { instance: v.instance_id })),
    h('span', { class: 'state-owner' }, t('state.ownerHost', { host: v.host_id })));
}

// havipList is the HAVIP list page.
export function havipList(main) {
  const filters = {
    'havip-id': '', 'havip-name': '', vip: '', 'vpc-id': '', 'subnet-id': '', 'address-ip': '',
    'check-associate': '', 'havip-association.instance-id': '',
  };
  let offset = 0;
  let limit = 20;
  let shown = '';
  const notice = h('div', { class: 'notice-slot' });
  if (pendingNotice) {
    fill(notice, h('div', { class: 'notice', role: 'status' }, pendingNotice));
    pendingNotice = '';
  }
  const body = h('div', { class: 'list-body', 'aria-busy': 'true' });

  const inputs = {
    'havip-id': h('input', { type: 'search', name: 'havip-id', autocomplete: 'off' }),
    'havip-name': h('input', { type: 'search', name: 'havip-name', autocomplete: 'off' }),
    vip: h('input', { type: 'search', name: 'vip', autocomplete: 'off', inputMode: 'decimal' }),
    'subnet-id': h('input', { type: 'search', name: 'subnet-id', autocomplete: 'off' }),
    'address-ip': h('input', { type: 'search', name: 'address-ip', autocomplete: 'off', inputMode: 'decimal' }),
    'havip-association.instance-id': h('input', { type: 'search', name: 'havip-association.instance-id', autocomplete: 'off' }),
  };
  const checkSel = h('select', { name: 'check-associate' },
    h('option', { value: '' }, t('filter.anyCheck')),
    h('option', { value: 'true' }, t('details.on')),
    h('option', { value: 'false' }, t('details.off')));
  const vpcSel = h('select', { name: 'vpc-id' }, h('option', { value: '' }, t('filter.anyVpc')));
  call('GET', '/vpcs?limit=100').then((r) => {
    for (const v of r.vpc_set || []) vpcSel.append(h('option', { value: v.vpc_id }, `${v.vpc_id} (${v.vpc_name})`));
  }).catch(() => {});
  const sizeSel = h('select', {
    name: 'limit',
    onchange: () => { limit = Number(sizeSel.value); offset = 0; refresh(true); },
  }, [10, 20, 50, 100].map((n) => h('option', { value: n, selected: n === limit }, t('pager.size', { n }))));

  const filterForm = h('form', {
    class: 'filters',
    role: 'search',
    'aria-label': t('filter.label'),
    onsubmit: (e) => {
      e.preventDefault();
      for (const k of Object.keys(inputs)) filters[k] = inputs[k].value.trim();
      filters['vpc-id'] = vpcSel.value;
      filters['check-associate'] = checkSel.value;
      offset = 0;
      refresh(true);
    },
  },
  field(t('col.id'), inputs['havip-id']),
  field(t('col.name'), inputs['havip-name']),
  field(t('col.vip'), inputs.vip),
  field(t('col.vpc'), vpcSel),
  field(t('col.subnet'), inputs['subnet-id']),
  field(t('col.eip'), inputs['address-ip']),
  field(t('details.checkAssociate'), checkSel),
  field(t('filter.rangeMember'), inputs['havip-association.instance-id']),
  field(t('pager.sizeLabel'), sizeSel),
  h('div', { class: 'filter-buttons' },
    h('button', { type: 'submit' }, t('filter.apply')),
    h('button', {
      type: 'reset',
      onclick: () => {
        for (const k of Object.keys(filters)) filters[k] = '';
        offset = 0;
        setTimeout(() => refresh(true));
      },
    }, t('filter.reset'))));

  const current = () => `/havips${query({ offset, limit }, filters)}`;
  async function refresh(force) {
    const path = current();
    let r;
    try {
      r = await call('GET', path);
    } catch (e) {
      if (force) fill(body, errorBox(e));
      throw e;
    }
    if (path !== current()) return; // the filters or the page changed meanwhile: a newer call draws
    const text = JSON.stringify(r);
    if (!force && text === shown) return; // nothing changed: keep the page as it is
    shown = text;
    const rows = (r.havip_set || []).map((v) => h('tr', { 'data-havip-id': v.havip_id },
      h('td', {}, h('a', { href: `#/havips/${encodeURIComponent(v.havip_id)}` }, v.havip_id)),
      h('td', {}, v.havip_name),
      h('td', {}, v.vip),
      h('td', {}, v.vpc_id),
      h('td', {}, v.subnet_id),
      h('td', {}, stateCell(v)),
      h('td', { class: 'eip' }, v.address_ip || t('havip.noEip')),
      h('td', {}, time(v.created_time))));
    const cols = ['col.id', 'col.name', 'col.vip', 'col.vpc', 'col.subnet', 'col.state', 'col.eip', 'col.created'].map((k) => t(k));
    fill(body,
      table(t('havips.title'), cols, rows, t('havips.empty')),
      pager(offset, limit, Number(r.total_count || 0), (o) => { offset = o; refresh(true); }));
    body.setAttribute('aria-busy', 'false');
  }

  const applyBtn = h('button', { type: 'button', class: 'primary', 'data-action': 'apply', onclick: () => applyDialog(() => refresh(true)) }, t('apply.open'));
  fill(main,
    h('div', { class: 'page-head' }, h('h1', {}, t('havips.title')), applyBtn),
    h('p', { class: 'intro' }, t('havips.intro')),
    notice, filterForm, body);
  refresh(true).catch(() => {});
  return { refresh: () => refresh(false) };
}

// applyDialog is the Apply dialog: name, VPC, its subnets, an automatic or a manual IP.
function applyDialog(done) {
  modal(t('apply.title'), (close) => {
    const name = h('input', { type: 'text', name: 'havip-name', maxLength: 60, autocomplete: 'off', required: true });
    const vpc = h('select', { name: 'vpc-id', required: true }, h('option', { value: '' }, t('apply.pickVpc')));
    const subnet = h('select', { name: 'subnet-id', required: true, disabled: true }, h('option', { value: '' }, t('apply.pickSubnet')));
    const autoId = id('ipmode');
    const auto = h('input', { type: 'radio', name: 'ip-mode', value: 'auto', id: autoId, checked: true });
    const manualId = id('ipmode');
    const manual = h('input', { type: 'radio', name: 'ip-mode', value: 'manual', id: manualId });
    const ip = h('input', { type: 'text', name: 'vip', inputMode: 'decimal', autocomplete: 'off', spellcheck: false });
    const usable = h('p', { class: 'hint usable', id: id('usable'), 'aria-live': 'polite' });
    ip.setAttribute('aria-describedby', usable.id);
    const ipField = h('div', { class: 'field', hidden: true }, h('label', { for: (ip.id = id('vip')) }, t('apply.ip')), ip, usable);
    const slot = h('div', { class: 'dialog-error' });
    const subnets = new Map();

    const showUsable = () => {
      const s = subnets.get(subnet.value);
      if (!s) {
        usable.textContent = t('apply.usableNone');
        return;
      }
      const u = usableRange(s.cidr_block);
      usable.textContent = t('apply.usable', { first: formatIPv4(u.first), last: formatIPv4(u.last), cidr: s.cidr_block });
    };
    const syncMode = () => {
      ipField.hidden = !manual.checked;
      showUsable();
    };
    auto.addEventListener('change', syncMode);
    manual.addEventListener('change', syncMode);
    subnet.addEventListener('change', showUsable);
    vpc.addEventListener('change', async () => {
      fill(subnet, h('option', { value: '' }, t('apply.pickSubnet')));
      subnets.clear();
      subnet.disabled = true;
      showUsable();
      if (!vpc.value) return;
      try {
        const r = await call('GET', `/subnets${query({ limit: 100 }, { 'vpc-id': vpc.value })}`);
        for (const s of r.subnet_set || []) {
          subnets.set(s.subnet_id, s);
          subnet.append(h('option', { value: s.subnet_id }, `${s.subnet_id} (${s.subnet_name}, ${s.cidr_block})`));
        }
        subnet.disabled = false;
      } catch (e) {
        showError(slot, e);
      }
    });
    call('GET', '/vpcs?limit=100').then((r) => {
      for (const v of r.vpc_set || []) vpc.append(h('option', { value: v.vpc_id }, `${v.vpc_id} (${v.vpc_name}, ${v.cidr_block})`));
    }).catch((e) => showError(slot, e));

    const submit = h('button', { type: 'submit', class: 'primary' }, t('apply.ok'));
    return h('form', {
      method: 'dialog',
      onsubmit: async (e) => {
        e.preventDefault();
        const clientError = (msg, focus) => {
          fill(slot, h('div', { class: 'error', role: 'alert' }, h('p', { class: 'error-message' }, msg)));
          focus.focus();
        };
        if (!name.value.trim()) return clientError(t('apply.needName'), name);
        if (!vpc.value) return clientError(t('apply.needVpc'), vpc);
        if (!subnet.value) return clientError(t('apply.needSubnet'), subnet);
        const req = { vpc_id: vpc.value, subnet_id: subnet.value, havip_name: name.value.trim() };
        if (manual.checked) {
          const n = parseIPv4(ip.value);
          if (n === null) return clientError(t('apply.badIp', { ip: ip.value.trim() }), ip);
          const u = usableRange(subnets.get(subnet.value).cidr_block);
          if (n < u.first || n > u.last) {
            return clientError(t('apply.outside', { ip: formatIPv4(n), first: formatIPv4(u.first), last: formatIPv4(u.last) }), ip);
          }
          req.vip = formatIPv4(n);
        }
        submit.disabled = true;
        try {
          const r = await call('POST', '/havips', req);
          close();
          announce(t('apply.created', { id: r.havip.havip_id, vip: r.havip.vip }));
          done();
        } catch (err) {
          showError(slot, err);
          submit.disabled = false;
        }
      },
    },
    field(t('apply.name'), name),
    field(t('apply.vpc'), vpc),
    field(t('apply.subnet'), subnet),
    h('fieldset', { class: 'ip-mode' },
      h('legend', {}, t('apply.ipMode')),
      h('div', { class: 'radio' }, auto, h('label', { for: autoId }, t('apply.auto'))),
      h('div', { class: 'radio' }, manual, h('label', { for: manualId }, t('apply.manual')))),
    ipField,
    slot,
    h('div', { class: 'dialog-buttons' },
      submit,
      h('button', { type: 'button', onclick: close }, t('dialog.cancel'))));
  });
}

// havipDetails is a HAVIP's page.
export function havipDetails(main, havipId) {
  const info = h('section', { class: 'card', 'aria-labelledby': 'sec-info' });
  const range = h('section', { class: 'card', 'aria-labelledby': 'sec-range' });
  const eip = h('section', { class: 'card', 'aria-labelledby': 'sec-eip' });
  const keepalived = h('section', { class: 'card', 'aria-labelledby': 'sec-keepalived' });
  const rejections = h('section', { class: 'card', 'aria-labelledby': 'sec-rejections' });
  const danger = h('section', { class: 'card', 'aria-labelledby': 'sec-delete' });
  const title = h('h1', {}, havipId);
  // The HAVIP's API path: its ID (from the address bar, so anyone's link) is one encoded path
  // segment, never a way out of /v1/havips/ ("..%2Faddresses%2F...").
  const at = `/havips/${encodeURIComponent(havipId)}`;
  let v = null;
  let shown = { info: '', range: '', eip: '', rejections: '' };
  let tick = 0;

  fill(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/havips' }, t('details.back'))),
    title, info, range, eip, keepalived, rejections, danger);

  function drawInfo() {
    const row = (k, val) => [h('dt', {}, t(k)), h('dd', {}, val || '—')];
    title.textContent = v.havip_name ? `${v.havip_name} (${v.havip_id})` : v.havip_id;
    fill(info,
      h('h2', { id: 'sec-info' }, t('details.info')),
      h('dl', { class: 'facts' },
        row('col.id', v.havip_id), row('col.name', v.havip_name), row('col.vip', v.vip),
        row('col.vpc', v.vpc_id), row('col.subnet', v.subnet_id), row('col.state', stateCell(v)),
        row('col.eip', v.address_ip), row('details.checkAssociate', v.check_associate ? t('details.on') : t('details.off')),
        row('details.changed', time(v.flushed_time)), row('col.created', time(v.created_time))));
  }

  async function drawRange() {
    const current = v.havip_association_set || [];
    const slot = h('div', {});
    const [cvms, enis] = await Promise.all([
      call('GET', `/instances${query({ limit: 100 }, { 'vpc-id': v.vpc_id })}`),
      call('GET', `/network-interfaces${query({ limit: 100 }, { 'vpc-id': v.vpc_id })}`),
    ]);
    const inRange = new Map(current.map((a) => [a.instance_id, a.instance_type]));
    const boxes = [];
    const option = (idv, type, label, why) => {
      const box = h('input', { type: 'checkbox', value: idv, checked: inRange.has(idv), disabled: Boolean(why), 'data-type': type });
      box.id = id('rng');
      boxes.push(box);
      return h('li', { class: 'check' }, box, h('label', { for: box.id }, label), why ? h('span', { class: 'why' }, why) : null);
    };
    const cvmList = (cvms.instance_set || []).map((c) => option(c.instance_id, 'CVM',
      t('range.cvmLabel', { id: c.instance_id, name: c.instance_name, ip: c.private_ip_address, host: c.host_id })));
    const eniList = (enis.network_interface_set || []).map((e) => {
      let why = '';
      if (e.primary) why = t('range.whyPrimary');
      else if (!e.instance_id) why = t('range.whyDetached');
      if (inRange.has(e.network_interface_id)) why = ''; // already in the range: it can be removed
      return option(e.network_interface_id, 'ENI',
        t('range.eniLabel', { id: e.network_interface_id, ip: e.primary_ip_address, instance: e.instance_id || '—' }), why);
    });
    const save = h('button', { type: 'submit', class: 'primary' }, t('range.save'));
    fill(range,
      h('h2', { id: 'sec-range' }, t('range.title')),
      h('ul', { class: 'rules' }, h('li', {}, t('range.rule1')), h('li', {}, t('range.rule2', { n: maxRange })), h('li', {}, t('range.rule3')), h('li', {}, t('range.rule4'))),
      h('p', { class: 'current-range' }, current.length
        ? t('range.current', { list: current.map((a) => t(a.instance_type === 'ENI' ? 'range.itemEni' : 'range.itemCvm', { id: a.instance_id })).join(', ') })
        : t('range.none')),
      h('form', {
        class: 'range-editor',
        onsubmit: async (e) => {
          e.preventDefault();
          const chosen = boxes.filter((b) => b.checked).map((b) => ({ instance_id: b.value, instance_type: b.dataset.type }));
          const types = new Set(chosen.map((c) => c.instance_type));
          const refuse = (msg) => fill(slot, h('div', { class: 'error', role: 'alert' }, h('p', { class: 'error-message' }, msg)));
          if (types.size > 1) return refuse(t('range.mixed'));
          if (chosen.length > maxRange) return refuse(t('range.tooMany', { n: maxRange, count: chosen.length }));
          const bad = chosen.find((c) => c.instance_type === 'ENI' && !inRange.has(c.instance_id)
            && boxes.find((b) => b.value === c.instance_id)?.disabled);
          if (bad) return refuse(t('range.badEni', { id: bad.instance_id }));
          const add = chosen.filter((c) => !inRange.has(c.instance_id));
          const remove = current.filter((a) => !chosen.some((c) => c.instance_id === a.instance_id));
          save.disabled = true;
          try {
            if (remove.length) await call('POST', `${at}:disassociateInstance`, { havip_association_set: remove });
            if (add.length) await call('POST', `${at}:associateInstance`, { havip_association_set: add });
            fill(slot);
            announce(t('range.saved'));
            await refresh(true);
          } catch (err) {
            showError(slot, err);
          }
          save.disabled = false;
        },
      },
      h('fieldset', {}, h('legend', {}, t('range.cvms')), cvmList.length ? h('ul', { class: 'checks' }, cvmList) : h('p', {}, t('range.noCvm'))),
      h('fieldset', {}, h('legend', {}, t('range.enis')), eniList.length ? h('ul', { class: 'checks' }, eniList) : h('p', {}, t('range.noEni'))),
      slot, save));
  }

  async function drawEip() {
    const slot = h('div', {});
    if (v.address_ip) {
      const unbind = h('button', {
        type: 'button',
        'data-action': 'unbind',
        onclick: async () => {
          unbind.disabled = true;
          try {
            await call('POST', `${at}:disassociateAddressIp`, {});
            announce(t('eip.unbound', { ip: v.address_ip }));
            await refresh(true);
          } catch (err) {
            showError(slot, err);
            unbind.disabled = false;
          }
        },
      }, t('eip.unbind'));
      fill(eip, h('h2', { id: 'sec-eip' }, t('eip.title')), h('p', { class: 'eip-bound' }, t('eip.boundTo', { ip: v.address_ip })), slot, unbind);
      return;
    }
    const r = await call('GET', `/addresses${query({ limit: 100 }, { 'address-status': 'UNBIND' })}`);
    const free = r.address_set || [];
    const sel = h('select', { name: 'address-ip' }, free.map((a) => h('option', { value: a.address_ip }, `${a.address_ip} (${a.address_id})`)));
    const bind = h('button', { type: 'submit', class: 'primary', disabled: free.length === 0 }, t('eip.bind'));
    fill(eip,
      h('h2', { id: 'sec-eip' }, t('eip.title')),
      h('p', {}, t('eip.intro')),
      h('form', {
        class: 'inline-form',
        onsubmit: async (e) => {
          e.preventDefault();
          bind.disabled = true;
          try {
            await call('POST', `${at}:associateAddressIp`, { address_ip: sel.value });
            announce(t('eip.bound', { ip: sel.value }));
            await refresh(true);
          } catch (err) {
            showError(slot, err);
            bind.disabled = false;
          }
        },
      }, free.length ? field(t('eip.pick'), sel) : h('p', { class: 'hint' }, t('eip.none')), bind),
      slot);
  }

  async function drawKeepalived() {
    const iface = h('input', { type: 'text', name: 'interface', value: 'eth0', autocomplete: 'off', spellcheck: false });
    const out = h('div', {});
    const load = async () => {
      try {
        const r = await call('GET', `${at}/keepalived-config${query({ interface: iface.value.trim() })}`);
        fill(out, (r.config_set || []).map((c) => {
          const pre = h('pre', { tabindex: 0, lang: 'en' }, h('code', {}, c.config));
          pre.id = id('conf');
          const copy = h('button', {
            type: 'button',
            'aria-describedby': pre.id,
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(c.config);
                announce(t('keepalived.copied', { id: c.instance_id }));
              } catch {
                getSelection().selectAllChildren(pre); // no clipboard: select it for Ctrl+C
                announce(t('keepalived.selected'));
              }
            },
          }, t('keepalived.copy', { id: c.instance_id }));
          return h('div', { class: 'conf' },
            h('h3', {}, t('keepalived.server', { id: c.instance_id, eni: c.network_interface_id, ip: c.unicast_src_ip, priority: c.priority })),
            copy, pre);
        }));
      } catch (err) {
        fill(out, err.reason === 'UnsupportedOperation.NotAssociated' ? h('p', { class: 'hint' }, t('keepalived.needTwo')) : errorBox(err));
      }
    };
    fill(keepalived,
      h('h2', { id: 'sec-keepalived' }, t('keepalived.title')),
      h('p', {}, t('keepalived.intro')),
      h('form', { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); load(); } },
        field(t('keepalived.interface'), iface), h('button', { type: 'submit' }, t('keepalived.show'))),
      out);
    await load();
  }

  async function drawRejections(force) {
    const r = await call('GET', `${at}/arp-rejections`);
    const text = JSON.stringify(r);
    if (!force && text === shown.rejections) return;
    shown.rejections = text;
    const rows = (r.rejection_set || []).map((x) => h('tr', {},
      h('td', {}, time(x.time)), h('td', {}, x.network_interface_id), h('td', {}, x.vip),
      h('td', {}, h('code', {}, x.reason)), h('td', { lang: 'en' }, x.message))); // the broker's words
    fill(rejections,
      h('h2', { id: 'sec-rejections' }, t('rejections.title')),
      h('p', {}, t('rejections.intro')),
      table(t('rejections.title'), ['col.time', 'col.eni', 'col.vip', 'col.reason', 'col.message'].map((k) => t(k)), rows, t('rejections.none')));
  }

  function drawDanger() {
    const del = h('button', { type: 'button', class: 'danger', 'data-action': 'delete', onclick: () => deleteDialog() }, t('delete.open'));
    fill(danger, h('h2', { id: 'sec-delete' }, t('delete.title')), h('p', {}, t('delete.intro')), del);
  }

  function deleteDialog() {
    modal(t('delete.confirmTitle', { id: havipId }), (close) => {
      const slot = h('div', { class: 'dialog-error' });
      const ok = h('button', {
        type: 'button',
        class: 'danger',
        'data-action': 'confirm-delete',
        onclick: async () => {
          ok.disabled = true;
          try {
            await call('DELETE', at);
            pendingNotice = t('delete.released', { id: havipId, vip: v?.vip ?? '' });
            close();
            location.hash = '#/havips';
          } catch (err) {
            showError(slot, err);
            ok.disabled = false;
          }
        },
      }, t('delete.confirm'));
      return h('div', {},
        h('p', {}, t('delete.question', { id: havipId, vip: v?.vip ?? '' })),
        h('p', { class: 'warning' }, t('delete.warning')),
        slot,
        h('div', { class: 'dialog-buttons' }, ok, h('button', { type: 'button', autofocus: true, onclick: close }, t('dialog.cancel'))));
    });
  }

  async function refresh(force) {
    let r;
    try {
      r = await call('GET', at);
    } catch (e) {
      if (force) fill(info, errorBox(e));
      throw e;
    }
    v = (r.havip_set || [])[0];
    if (!v) return;
    const infoText = JSON.stringify(v);
    if (force || infoText !== shown.info) {
      shown.info = infoText;
      drawInfo();
    }
    const rangeText = JSON.stringify(v.havip_association_set || []);
    if (force || rangeText !== shown.range) {
      shown.range = rangeText;
      await Promise.all([drawRange(), drawKeepalived()]);
    }
    if (force || v.address_ip !== shown.eip) {
      shown.eip = v.address_ip;
      await drawEip();
    }
    tick += 1;
    if (force || tick % 2 === 0) await drawRejections(force); // every second
  }

  drawDanger();
  refresh(true).catch(() => {});
  return { refresh: () => refresh(false) };
}
