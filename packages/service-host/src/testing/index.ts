/**
 * @clefnet/service-host/testing: fixtures for the tests of any service: a manual clock, temp
 * folders, a silent logger, polling, JSON over HTTP, a client party on real WebSockets, a recording
 * pool of ephemeral keys, and a recording proxy for the `connect` hook. Not for production code.
 */
export {
  binaryFrameHead,
  httpJson,
  manualClock,
  PartyLink,
  rawWsClient,
  recordingPool,
  silent,
  T0,
  tempDir,
  until,
} from './helpers.js';
export { type HostedParty, hostParty } from './hosted.js';
export { type RecordedMessage, type RecordingProxy, startRecordingProxy } from './proxy.js';
