export type { AncVeOptions, InstalledProgram } from './anc.js';
export { AncMachine, AncVe, createAncMachine, createAncVe } from './anc.js';
export type { AsdHandler, AsdOptions } from './asd.js';
export { Asd, createAsd } from './asd.js';
export type { Delivery, KnownKeyServer, Outbound, Outcome, PartyOptions, Pending } from './core.js';
export { Party } from './core.js';
export type { EventType, ProtocolEvent, Step } from './events.js';
export type { AclEntry, KeyServerJob, KeyServerOptions } from './key-server.js';
export { createKeyServer, KeyServer } from './key-server.js';
export type {
  Deployment,
  DeploymentState,
  DeployRequest,
  RepositoryOptions,
  StepOrder,
} from './repository.js';
export { createRepository, Repository, STEP_ORDERS } from './repository.js';
export { createSecApp, SecApp } from './secapp.js';
