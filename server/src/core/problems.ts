/** A configuration problem or lint warning, with the path of the offending value. */
export interface Problem {
  path: string;
  message: string;
}

export const formatProblem = (p: Problem): string => `${p.path || '(root)'}: ${p.message}`;
