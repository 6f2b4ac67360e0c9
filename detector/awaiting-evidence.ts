/**
 * Sources blocked on unverified evidence while their incidents go on: each waits, with the
 * detection that asked for its block, for a handshake that verifies it. Bounded, oldest source
 * forgotten first: a forged flood blocks many sources that will never verify.
 */
import type { Incident } from '../common/alert-events';
import type { Detection } from './rules/engine';

export interface AwaitingBlock {
  detection: Detection;
  incident: Incident;
}

export class AwaitingEvidence {
  /** source → rule id → what its block waits with. */
  private readonly bySource = new Map<string, Map<string, AwaitingBlock>>();
  private count = 0;

  constructor(private readonly max: number) {}

  add(detection: Detection, incident: Incident): void {
    const known = this.bySource.get(incident.key)?.has(incident.ruleId) ?? false;
    if (!known && this.count >= this.max) {
      const [source, rules] = this.bySource.entries().next().value!;
      this.delete(source, rules.keys().next().value!);
    }
    const rules = this.bySource.get(incident.key) ?? new Map<string, AwaitingBlock>();
    if (!known) this.count++;
    rules.set(incident.ruleId, { detection, incident });
    this.bySource.set(incident.key, rules);
  }

  of(source: string): AwaitingBlock[] {
    return [...(this.bySource.get(source)?.values() ?? [])];
  }

  delete(source: string, ruleId: string): void {
    const rules = this.bySource.get(source);
    if (!rules?.delete(ruleId)) return;
    this.count--;
    if (rules.size === 0) this.bySource.delete(source);
  }
}
