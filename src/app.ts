/**
 * The GitHub App as a library: `import app, { agoraApp, agoraFromEnv } from 'agora/app'`. The default
 * export is the Probot app function (`probot run` can load it); `agoraFromEnv` builds the service from
 * the environment docs/github-app.md lists, and `agoraApp` wires a service you built into Probot.
 */
export { default, agoraApp, agoraFromEnv } from './github/app.js';
export { AgoraGitHub, type AgoraGitHubOptions } from './github/agora-github.js';
