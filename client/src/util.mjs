// @ts-check
import { createHash } from 'node:crypto';

/** @param {string} text */
export const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** @param {string} text */
export const sha256 = (text) => createHash('sha256').update(text).digest('hex');
