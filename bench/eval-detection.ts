/**
 * npm run eval:detection [-- --long] [--only ID,...] [--rules PATH...] [--resolve-after S] [--drain S] [--out DIR]
 *
 * Detection and response on real traffic through the whole pipeline as `xdp-ids run` wires it
 * (sensor on a veth, private Redis, windows queue, detector with the default rule pack, incidents,
 * blocker, ledger and enforcer, alerter writing to a mailbox with the built-in configuration):
 * attack cases (nmap, masscan, hping3, replayed captures of reflection floods) and benign ones
 * (curl, wrk, iperf3, a resolving host, NTP, a QUIC-like download), each from its own lab host to
 * its own protected address in the lab xiev (198.18.40.0/24, fd00:18:28::/64), bounded in packets
 * and seconds. The cases and their expected rules are lab/eval/cases.ts.
 *
 * Prints the machine, one line per case (expected rule, verdict, rules fired, seconds from the
 * case's start to its first incident and to its first drop in the kernel, messages in the
 * mailbox, packets that arrived, blocks with their TTLs and limits), notes, and as the last line
 * the summary as JSON; per-case details go to <out>/detection-<date>.json, the alerts to .mbox
 * beside it (mutt -f). --long plays every
 * case twice. Progress and logs go to stderr (XDP_IDS_LOG_LEVEL, default warn).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { defaultRulesDir, loadRules } from '../detector/rules/loader';
import { CASES, SHORT_BLOCK_MAX_MS } from '../lab/eval/cases';
import { mailboxConfig } from '../alerts/config';
import { LAB_NAME, LAB_SUBNET, runEval } from '../lab/eval/harness';
import { labPrefixes } from '../lab/netns';
import { notes, summarize, table } from '../lab/eval/report';
import { judge } from '../lab/eval/verdicts';

const { values: args } = parseArgs({
  options: {
    long: { type: 'boolean', default: false },
    only: { type: 'string' },
    rules: { type: 'string', multiple: true },
    'resolve-after': { type: 'string', default: '10' },
    drain: { type: 'string', default: '150' },
    out: { type: 'string', default: 'eval-results' },
  },
});

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, node ${process.version}`;
}

async function main(): Promise<void> {
  const only = args.only ? new Set(args.only.split(',')) : undefined;
  const unknown = [...(only ?? [])].filter((id) => !CASES.some((c) => c.id === id));
  if (unknown.length) throw new Error(`no such case: ${unknown.join(', ')} (see lab/eval/cases.ts)`);
  const selected = CASES.filter((c) => !only || only.has(c.id));
  const cases = args.long ? [...selected, ...selected] : selected;
  const rulePaths = args.rules ?? [defaultRulesDir()];
  const loaded = loadRules(rulePaths);
  if (!loaded.ruleSet) throw new Error(`the rules do not load: ${loaded.problems.map((p) => p.message).join('; ')}`);
  const ruleIds = new Set(loaded.ruleSet.rules.map((r) => r.id));
  const resolveAfterS = Number(args['resolve-after']);
  const log = pino({ name: 'eval-detection', level: process.env.XDP_IDS_LOG_LEVEL ?? 'warn' }, pino.destination(2));

  console.log(`machine: ${machine()}`);
  const prefixes = labPrefixes(LAB_SUBNET);
  const route = mailboxConfig('-').routes[0];
  console.log(`rules: ${ruleIds.size} from ${rulePaths.join(' ')}; cases: ${cases.filter((c) => c.kind === 'attack').length} attack, ${cases.filter((c) => c.kind === 'benign').length} benign${args.long ? ' (--long: each twice)' : ''}; lab ${LAB_NAME} (${prefixes.v4}.0/24, ${prefixes.v6}/64)`);
  console.log(`pipeline as \`xdp-ids run\` without --alerts (mailbox; group by ${route.groupBy.join(',')}, group_wait ${route.groupWaitMs / 1000} s, group_interval ${route.groupIntervalMs / 1000} s), ` +
    `except: incidents resolve after ${resolveAfterS} s of quiet (run: 60 s), no anomaly model`);

  const outDir = path.resolve(args.out);
  fs.mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  const file = path.join(outDir, `detection-${new Date(started).toISOString().replace(/[:.]/g, '-')}`);
  const run = await runEval({
    cases, rulePaths, resolveAfterMs: resolveAfterS * 1000, drainMs: Number(args.drain) * 1000, log, keepMailboxAs: `${file}.mbox`,
    progress: (line) => process.stderr.write(`eval +${Math.round((Date.now() - started) / 1000)}s: ${line}\n`),
  });
  const judged = judge(run, ruleIds);
  const durationS = Math.round((run.endedMs - run.startedMs) / 1000);
  const summary = summarize(judged.cases, {
    messagesTotal: run.messages.length, messagesUnattributed: judged.unattributedMessages.length, unresolved: run.unresolved, resolveAfterS, durationS,
  });

  console.log('');
  for (const line of table(judged.cases)) console.log(line);
  const remarks = notes(judged.cases, judged.unattributedIncidents, judged.unattributedMessages);
  if (remarks.length) {
    console.log('');
    for (const line of remarks) console.log(line);
  }
  fs.writeFileSync(`${file}.json`, `${JSON.stringify({
    machine: machine(), startedAt: new Date(run.startedMs).toISOString(), rulePaths, rules: [...ruleIds], long: args.long,
    resolveAfterS, shortBlockMaxS: SHORT_BLOCK_MAX_MS / 1000, summary, cases: judged.cases,
    unattributedIncidents: judged.unattributedIncidents, unattributedMessages: judged.unattributedMessages,
  }, null, 2)}\n`);
  console.log('');
  console.log(`${summary.named_correctly} of ${summary.attack_cases} attacks named correctly, ${summary.mislabeled} mislabeled, ${summary.missed} missed, ${summary.attack_errors} errors; ` +
    `benign: ${summary.benign_incidents} incidents and ${summary.benign_blocks} blocks in ${summary.benign_cases} cases; took ${durationS} s; details in ${path.relative(process.cwd(), file)}.json, alerts in .mbox`);
  console.log(JSON.stringify({ ...summary, results_file: `${path.relative(process.cwd(), file)}.json` }));
}

main().then(() => process.exit(0), (err: Error) => {
  process.stderr.write(`eval:detection failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
