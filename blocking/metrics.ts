/**
 * Prometheus view of the ledger, read from Redis at scrape time so it covers every blocker and
 * sensor on that Redis. Per-entry drop labels are bounded by the active-block budget.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BlockLedger } from './ledger';

export function blockingMetrics(ledger: BlockLedger, registry: Registry): Registry {
  const byPrefix = (stats: Record<string, number>, prefix: string): [string, number][] =>
    Object.entries(stats).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]);

  new Counter({
    name: 'xdp_ids_blocks_total', help: 'New blocks written to the ledger', labelNames: ['origin'], registers: [registry],
    async collect() {
      this.reset();
      for (const [origin, n] of byPrefix(await ledger.stats(), 'blocked:')) this.inc({ origin }, n);
    },
  });
  new Counter({
    name: 'xdp_ids_block_extensions_total', help: 'Re-bans that extended an active block', labelNames: ['origin'], registers: [registry],
    async collect() {
      this.reset();
      for (const [origin, n] of byPrefix(await ledger.stats(), 'extended:')) this.inc({ origin }, n);
    },
  });
  new Counter({
    name: 'xdp_ids_unblocks_total', help: 'Blocks removed, by manual unblock or expiry', labelNames: ['reason'], registers: [registry],
    async collect() {
      this.reset();
      const stats = await ledger.stats();
      this.inc({ reason: 'manual' }, stats.unblocked ?? 0);
      this.inc({ reason: 'expired' }, stats.expired ?? 0);
    },
  });
  new Counter({
    name: 'xdp_ids_block_refusals_total', help: 'Block requests refused', labelNames: ['reason'], registers: [registry],
    async collect() {
      this.reset();
      for (const [reason, n] of byPrefix(await ledger.stats(), 'refused:')) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: 'xdp_ids_block_dry_run_total', help: 'Dry-run decisions recorded as would-block', registers: [registry],
    async collect() {
      this.reset();
      this.inc((await ledger.stats())['would-block'] ?? 0);
    },
  });
  new Gauge({
    name: 'xdp_ids_blocks_active', help: 'Blocks in force in the ledger', registers: [registry],
    async collect() {
      this.set((await ledger.snapshot()).blocks.length);
    },
  });
  new Counter({
    name: 'xdp_ids_block_drops_total', help: 'Packets dropped at XDP per block entry and sensor (last reconciliation)', labelNames: ['sensor', 'prefix'], registers: [registry],
    async collect() {
      this.reset();
      for (const s of await ledger.sensorStates()) for (const [prefix, n] of Object.entries(s.drops)) this.inc({ sensor: s.sensor, prefix }, n);
    },
  });
  new Counter({
    name: 'xdp_ids_block_reconcile_repairs_total', help: 'Kernel entries a sensor added or removed to match the ledger', labelNames: ['sensor', 'kind'], registers: [registry],
    async collect() {
      this.reset();
      for (const s of await ledger.sensorStates()) {
        this.inc({ sensor: s.sensor, kind: 'added' }, s.repairs['repairs:added'] ?? 0);
        this.inc({ sensor: s.sensor, kind: 'removed' }, s.repairs['repairs:removed'] ?? 0);
      }
    },
  });
  return registry;
}
