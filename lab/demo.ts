/**
 * The demo lab that `xdp-ids sensor` runs when no interface is given: a protected host with a web
 * server and an iperf3 server, 31 benign web clients, and an attacker that cycles through real
 * scans and floods. Every attack run is bounded in packets and seconds; the lab is removed on stop.
 */
import { NetnsLab } from './netns';
import { startLabServices, IPERF_PORT } from './services';

export interface DemoLab {
  iface: string;
  /** The addresses attacks come from. */
  attackers: string[];
  stop(): Promise<void>;
}

const ATTACK_CYCLE = [
  'nmap -n -Pn -sS -p 1-1000 --max-retries 0 -T4 --host-timeout 15s {target}',
  'hping3 -q -S -p 80 -c 3000 -i u300 {target}',
  'nmap -n -Pn -sX -p 1-500 --max-retries 0 -T4 --host-timeout 15s {target}',
  'hping3 -q --udp -p 53 -c 3000 -i u300 {target}',
  'nmap -n -Pn -sU -p 1-200 --max-retries 0 -T5 --host-timeout 15s {target}',
  'hping3 -q --icmp -c 2000 -i u500 {target}',
];

export async function startDemoLab(name = 'xidemo'): Promise<DemoLab> {
  const lab = new NetnsLab(name).create();
  const clientAddresses = Array.from({ length: 30 }, (_, i) => `${lab.v4Prefix}.${11 + i}`);
  const web = lab.addHost('web', 10, clientAddresses);
  const attacker = lab.addHost('atk', 66);
  const services = await startLabServices(lab);
  const target = lab.hostV4;

  const browse = `while true; do for a in ${web.v4} ${clientAddresses.join(' ')}; do ` +
    `curl -s -o /dev/null -m 2 --interface $a ${services.httpUrl}; done; sleep 1; done`;
  lab.spawn(web, ['sh', '-c', browse]);
  lab.spawn(web, ['sh', '-c', `while true; do iperf3 -c ${target} -p ${IPERF_PORT} -t 2 -b 20M >/dev/null 2>&1; sleep 20; done`]);
  const attacks = ATTACK_CYCLE.map((cmd) => `sleep 10; ${cmd.replace('{target}', target)} >/dev/null 2>&1`).join('; ');
  lab.spawn(attacker, ['sh', '-c', `while true; do ${attacks}; done`]);

  return {
    iface: lab.iface,
    attackers: [attacker.v4],
    async stop() {
      await services.close();
      lab.destroy();
    },
  };
}
