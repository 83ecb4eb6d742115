/**
 * The whole exchange of JP 2001-318797 A in one process: the machine obtains its VE's limited-use
 * key (KEY-7, TB-12), the AR downloads a program into the VE (steps 1-9) and hands over the SecApp
 * triple (PROTO-23), and the application reaches the ASD through KServ2 (PROTO-25). Then E replays
 * the step-7 message (ATK-1). Every frame on the wire is printed.
 *
 *   npm run exchange                           # patent profile, node:crypto
 *   npm run exchange -- --profile hardened --backend noble
 */
import { parseArgs } from 'node:util';
import {
  BACKEND_NAMES,
  type BackendName,
  backendByName,
  createWorld,
  type ProfileName,
  utf8,
} from '@clefnet/protocol';

const { values } = parseArgs({
  options: {
    profile: { type: 'string', default: 'patent' },
    backend: { type: 'string', default: 'node' },
    seed: { type: 'string', default: 'clefnet' },
  },
});
if (values.profile !== 'patent' && values.profile !== 'hardened') {
  console.error(`--profile must be patent or hardened, not ${values.profile}`);
  process.exit(2);
}
if (!(BACKEND_NAMES as readonly string[]).includes(values.backend)) {
  console.error(`--backend must be one of ${BACKEND_NAMES.join(', ')}, not ${values.backend}`);
  process.exit(2);
}
const profile = values.profile as ProfileName;
const backend = backendByName(values.backend as BackendName);
const w = createWorld({ profile, backend, seed: values.seed });

let printed = 0;
function flush(title: string): void {
  console.log(`\n== ${title}`);
  for (const f of w.net.wire.slice(printed)) {
    console.log(`  ${f.step.padEnd(11)} ${f.from} -> ${f.to} (${f.bytes.length} bytes)`);
  }
  printed = w.net.wire.length;
  for (const e of w.net.errors.splice(0))
    console.log(`  !! ${e.party} refused: ${e.error.code} (${e.error.message})`);
}

console.log(`clefnet in-memory exchange: profile ${profile}, backend ${backend.name}, seed ${values.seed}`);
w.issueVeKey();
flush(`KEY-7: ${w.names.machine} obtains the limited-use triple of ${w.names.ve} from KServ1`);
const program = utf8('billing counter v1');
const id = w.deploy(program);
flush(`steps 1-9 and the hand-over: ${w.names.ar} downloads ${program.length} bytes into ${w.names.ve}`);
const d = w.ar.deployment(id);
console.log(`  deployment ${id}: ${d?.state}; programs installed in the VE: ${w.ve?.installed.length ?? 0}`);
w.channel(utf8('packets=3 bytes=120'));
flush(`PROTO-25: ${w.names.secApp} reports to ${w.names.asd} through KServ2`);
const answer = w.channelAnswers.at(-1);
console.log(`  the ASD answered ${answer ? JSON.stringify(Buffer.from(answer.data).toString()) : 'nothing'}`);

const recorded = [...w.net.wire].reverse().find((f) => f.step === 'M7');
if (recorded !== undefined) {
  w.advance(1_000);
  w.net.inject(w.names.ar, w.names.ve, recorded.bytes);
  w.net.run();
  flush('ATK-1: E replays the recorded step-7 message');
  console.log(`  programs installed in the VE: ${w.ve?.installed.length ?? 0}`);
}

const other = profile === 'patent' ? 'hardened' : 'patent';
const next: [string, string][] = [
  [`npm start -- --profile ${other}`, 'the same run under the other profile'],
  ['npm test', 'every test, including the attack replays'],
  ['npm run bench -- protocol', 'crypto and exchange figures per backend'],
  ['docs/protocol.md', 'the wire specification'],
];
console.log('\nWhat next:');
for (const [cmd, what] of next) console.log(`  ${cmd.padEnd(34)} ${what}`);
