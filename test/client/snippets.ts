// Shell snippets the docs show, kept here so tests run them verbatim (test/client/xtrace.test.ts)
// and a docs check can find them word for word in the docs.
//
// Each runs inside a CI `sh` step that may be traced (`set -x`: Jenkins runs `sh -xe`, GitLab's
// CI_DEBUG_TRACE, a user's own `set -x`), so none of them lets a value reach the trace: the
// client writes a profile into a per-job credentials file, and the step names only the profile.
export const SNIPPETS = {
  /** Jenkins (`sh '''…'''` inside withCredentials), Node client. */
  jenkinsNode: [
    'export AWS_SHARED_CREDENTIALS_FILE="$WORKSPACE_TMP/aws-credentials" AWS_PROFILE=credbroker AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1',
    'node .ci/credbroker-client.mjs --provider jenkins --format profile',
    'aws sts get-caller-identity',
  ].join('\n'),
  /** Jenkins, sh + curl client. */
  jenkinsSh: [
    'export AWS_SHARED_CREDENTIALS_FILE="$WORKSPACE_TMP/aws-credentials" AWS_PROFILE=credbroker AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1',
    'sh .ci/credbroker-client.sh --provider jenkins --format profile',
    'aws sts get-caller-identity',
  ].join('\n'),
} as const;

/** The form the docs warn against under a traced shell (kept to prove the warning true). */
export const EVAL_UNDER_TRACE = 'eval "$(node .ci/credbroker-client.mjs --provider jenkins)"';
