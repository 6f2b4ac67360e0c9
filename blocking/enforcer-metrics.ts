/**
 * The enforcer's Prometheus metrics: what its kernel holds (read at scrape time), how long
 * reconciliations take and how long ago the last one succeeded (a sensor that cannot reach the
 * ledger keeps enforcing what it had, so this age is what shows it). Repairs and drops per entry
 * are the ledger's view, served fleet-wide by the control API (blocking/metrics.ts).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { XdpIdsProgram } from '../sensor/kernel/program';

export class EnforcerMetrics {
  private program?: XdpIdsProgram;
  private lastReconcileMs?: number;
  private readonly seconds: Histogram;
  private readonly failures: Counter;
  private readonly refused: Counter;
  private readonly writeFailures: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    const metrics = this;
    new Gauge({
      name: 'xdp_ids_enforcer_kernel_entries', help: 'Entries in the kernel\'s tables, by table', labelNames: ['table'], registers,
      collect() {
        const program = metrics.program;
        if (!program) return;
        this.set({ table: 'blocks' }, program.listBlocks().length);
        this.set({ table: 'allows' }, program.listAllows().length);
        this.set({ table: 'limits' }, program.listDestinationLimits().length);
      },
    });
    this.seconds = new Histogram({
      name: 'xdp_ids_enforcer_reconcile_seconds', help: 'Time of a full reconciliation of the kernel with the ledger', registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    new Gauge({
      name: 'xdp_ids_enforcer_last_reconcile_age_seconds', help: 'Seconds since the last successful reconciliation (absent before the first)', registers,
      collect() {
        if (metrics.lastReconcileMs !== undefined) this.set((Date.now() - metrics.lastReconcileMs) / 1000);
      },
    });
    this.failures = new Counter({ name: 'xdp_ids_enforcer_reconcile_failures_total', help: 'Reconciliations that failed (the ledger unreachable)', registers });
    this.refused = new Counter({ name: 'xdp_ids_enforcer_refused_entries_total', help: 'Ledger entries not let into the kernel by its policy (kernel-policy.ts), per reconciliation or hint', registers });
    this.writeFailures = new Counter({ name: 'xdp_ids_enforcer_kernel_write_failures_total', help: 'Kernel writes that failed (a full table)', registers });
  }

  watch(program: XdpIdsProgram): void {
    this.program = program;
  }

  reconciled(seconds: number): void {
    this.seconds.observe(seconds);
    this.lastReconcileMs = Date.now();
  }

  reconcileFailed(): void {
    this.failures.inc();
  }

  applied(tally: { refused: number; failed: number }): void {
    this.refused.inc(tally.refused);
    this.writeFailures.inc(tally.failed);
  }
}
