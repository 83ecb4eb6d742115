/**
 * The ANC process: `node --conditions=source --import tsx services/anc/src/main.ts <config.json>`
 * (@clefnet/service-host's runServiceMain: one JSON listen line on stdout, logs on stderr, graceful
 * stop on SIGTERM or SIGINT).
 */
import { raiseInliningBudget } from '@clefnet/emulator';
import { runServiceMain } from '@clefnet/service-host';
import { parseConfig } from './config.js';
import { createAncService } from './server.js';

// The machine's far transfers run faster with V8's larger inlining budget; set before it runs
// (packages/emulator/src/cpu/engine.ts).
raiseInliningBudget();
runServiceMain({ service: 'anc', parseConfig, create: createAncService });
