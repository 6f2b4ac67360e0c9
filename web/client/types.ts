/** The JSON the API answers with, as the pages use it (web/routes.ts, web/incident-view.ts, blocking/api.ts). */

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

export interface TopSource { src: string; packets: number; bytes: number; syn: number; ports: number }

export interface TickSummary { sensor: string; endMs: number; seconds: number; packets: number; bytes: number; drops: number; sources: number; top: TopSource[] }

export interface IncidentRow {
  id: string; ruleId: string; title: string; severity: Severity; scope: string; key: string; sensors: string[]; openedMs: number; lastSeenMs: number;
  resolvedMs?: number; detections: number; action: string; block?: { status: string; target: string; traffic?: string }; overflowKeys?: number;
}

export interface BlockEntry {
  target: string; scope: string; origin: string; evidence: string; reason: string; ruleId?: string; incidentId?: string; key?: string; actor?: string;
  createdMs: number; expiresMs: number; strikes: number;
}

export interface LimitEntry { target: string; traffic: string; perSecond: number; origin: string; reason: string; ruleId?: string; actor?: string; createdMs: number; expiresMs: number }

export interface IncidentDetail {
  incident: IncidentRow;
  description: string; when: string; windowMs: number; groupBy: string; mitre: string[]; tags: string[]; ruleVersion: string; attackId: string | null;
  conditions: { expression: string; value: string; threshold: string; holds: boolean }[];
  features: { name: string; value: string; peak: string }[];
  explanation: { feature: string; value: string; percent: number }[];
  samples: { time: string; src: string; srcPort: number | string; dst: string; dstPort: number | string; protocol: string; flags: string; ttl: number; window: number | string; dscp: number; length: number }[];
  timeline: { atMs: number; what: string }[];
  decision: { status: string; target: string; evidence?: string; expiresMs?: number; reason?: string; undo?: string; traffic?: string } | null;
  ledger: { block: BlockEntry | null; limit: LimitEntry | null };
  overflow: { keys: number; sampleKeys: string[] } | null;
}
