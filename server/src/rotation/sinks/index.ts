// Sink factory: config (already expanded for one user) → Sink.
import type { SinkConfig } from '../config-schema.js';
import { circleciSinkId, createCircleciSink } from './circleci.js';
import { commandSinkId, createCommandSink } from './command.js';
import { createGithubSink, githubSinkId } from './github.js';
import { createGitlabSink, gitlabSinkId } from './gitlab.js';
import { createTravisSink, travisSinkId } from './travis.js';
import type { Sink, SinkContext } from './types.js';

export type { Sink, SinkContext } from './types.js';

export function sinkIdOf(cfg: SinkConfig): string {
  return cfg.id ?? targetOf(cfg);
}

/** Where the sink writes, as one string (the default sink id): what `allowed_targets` patterns match. */
export function targetOf(cfg: SinkConfig): string {
  switch (cfg.type) {
    case 'github':
      return githubSinkId(cfg);
    case 'gitlab':
      return gitlabSinkId(cfg);
    case 'circleci':
      return circleciSinkId(cfg);
    case 'travis':
      return travisSinkId(cfg);
    case 'command':
      return commandSinkId(cfg);
  }
}

export function createSink(cfg: SinkConfig, ctx: SinkContext): Sink {
  const id = sinkIdOf(cfg);
  switch (cfg.type) {
    case 'github':
      return createGithubSink(cfg, ctx, id);
    case 'gitlab':
      return createGitlabSink(cfg, ctx, id);
    case 'circleci':
      return createCircleciSink(cfg, ctx, id);
    case 'travis':
      return createTravisSink(cfg, ctx, id);
    case 'command':
      return createCommandSink(cfg, ctx, id);
  }
}
