export { startGithubApi, type GithubApi } from './github.js';
export { startGitlabApi, type GitlabApi } from './gitlab.js';
export { startCircleciApi, type CircleciApi } from './circleci.js';
export { startTravisApi, type TravisApi } from './travis.js';
export type { StandIn } from './server.js';
