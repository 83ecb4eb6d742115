/**
 * The AR process: `node --conditions=source --import tsx services/repository/src/main.ts
 * <config.json>` (@clefnet/service-host's runServiceMain: one JSON listen line on stdout, logs on
 * stderr, graceful stop on SIGTERM or SIGINT).
 */
import { runServiceMain } from '@clefnet/service-host';
import { parseConfig } from './config.js';
import { createRepositoryService } from './server.js';

runServiceMain({ service: 'repository', parseConfig, create: createRepositoryService });
