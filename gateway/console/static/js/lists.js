// The list pages of the sidebar (VPCs, subnets, CVMs, ENIs, EIPs): enough to find and pick
// what a HAVIP needs, with paging as the API has it.

import { h, fill } from './dom.js';
import { t, time } from './i18n.js';
import { call, query } from './api.js';
import { table, pager, errorBox, announce } from './ui.js';

const limit = 20;
const link = (v) => (v ? h('a', { href: `#/havips/${encodeURIComponent(v)}` }, v) : '');

// pages describe each list: its route, title, API path, answer field and columns.
export const pages = {
  vpcs: {
    title: 'vpcs.title', path: '/vpcs', set: 'vpc_set',
    columns: [
      ['col.id', (r) => r.vpc_id], ['col.name', (r) => r.vpc_name], ['col.cidr', (r) => r.cidr_block],
      ['col.created', (r) => time(r.created_time)],
    ],
  },
  subnets: {
    title: 'subnets.title', path: '/subnets', set: 'subnet_set',
    columns: [
      ['col.id', (r) => r.subnet_id], ['col.name', (r) => r.subnet_name], ['col.vpc', (r) => r.vpc_id],
      ['col.cidr', (r) => r.cidr_block], ['col.gateway', (r) => r.gateway_ip_address],
      ['col.available', (r) => t('subnets.available', { free: r.available_ip_address_count, total: r.total_ip_address_count })],
      ['col.created', (r) => time(r.created_time)],
    ],
  },
  instances: {
    title: 'instances.title', path: '/instances', set: 'instance_set',
    columns: [
      ['col.id', (r) => r.instance_id], ['col.name', (r) => r.instance_name], ['col.vpc', (r) => r.vpc_id],
      ['col.subnet', (r) => r.subnet_id], ['col.host', (r) => r.host_id],
      ['col.primaryEni', (r) => r.primary_network_interface_id], ['col.privateIp', (r) => r.private_ip_address],
      ['col.created', (r) => time(r.created_time)],
    ],
  },
  enis: {
    title: 'enis.title', path: '/network-interfaces', set: 'network_interface_set',
    columns: [
      ['col.id', (r) => r.network_interface_id], ['col.name', (r) => r.network_interface_name],
      ['col.subnet', (r) => r.subnet_id], ['col.instance', (r) => r.instance_id || t('enis.detached')],
      ['col.primary', (r) => (r.primary ? t('enis.primary') : t('enis.secondary'))],
      ['col.privateIp', (r) => r.primary_ip_address], ['col.mac', (r) => r.mac_address],
      ['col.created', (r) => time(r.created_time)],
    ],
  },
  eips: {
    title: 'eips.title', path: '/addresses', set: 'address_set',
    columns: [
      ['col.id', (r) => r.address_id], ['col.name', (r) => r.address_name], ['col.publicIp', (r) => r.address_ip],
      ['col.status', (r) => (r.address_status === 'BIND' ? t('eips.bound') : t('eips.unbound'))],
      ['col.havip', (r) => link(r.havip_id)], ['col.eni', (r) => r.network_interface_id],
      ['col.reaches', (r) => (r.reaches_server ? t('eips.reaches') : t('eips.notReaches'))],
      ['col.created', (r) => time(r.created_time)],
    ],
    // Allocate makes a new EIP, to bind to a HAVIP on its details page.
    action: (reload, slot) => h('button', {
      type: 'button',
      class: 'primary',
      onclick: async () => {
        try {
          const r = await call('POST', '/addresses', { address_count: 1 });
          announce(t('eips.allocated', { ip: r.address_set?.[0]?.address_ip ?? '' }));
          fill(slot);
          reload();
        } catch (e) {
          fill(slot, errorBox(e));
        }
      },
    }, t('eips.allocate')),
  },
};

// listPage shows one list with paging.
export function listPage(main, cfg) {
  let offset = 0;
  const slot = h('div', {});
  const body = h('div', { class: 'list-body', 'aria-busy': 'true' });
  const reload = async () => {
    try {
      const r = await call('GET', cfg.path + query({ offset, limit }));
      const rows = (r[cfg.set] || []).map((row) => h('tr', {}, cfg.columns.map(([, fn]) => h('td', {}, fn(row)))));
      fill(body,
        table(t(cfg.title), cfg.columns.map(([k]) => t(k)), rows, t('list.empty')),
        pager(offset, limit, Number(r.total_count || 0), (o) => { offset = o; reload(); }));
    } catch (e) {
      fill(body, errorBox(e));
    }
    body.setAttribute('aria-busy', 'false');
  };
  fill(main,
    h('div', { class: 'page-head' }, h('h1', {}, t(cfg.title)), cfg.action ? cfg.action(reload, slot) : null),
    slot, body);
  reload();
  return {};
}
