import * as core from '@actions/core';
import { AgoraError } from '../errors.js';
import { PUBLIC_FULCIO_URL, PUBLIC_REKOR_URL } from '../github/signer-env.js';
import { readRefNamespace, readToken } from './inputs.js';

/** What `mode: run` is given, checked for form; every problem names the input and the fix. */
export interface RunInputs {
  token: string;
  refNamespace: string;
  /** The container image `command` items run in (docker on the runner). */
  image: string;
  /** Most items running at once. */
  concurrency: number;
  fulcioUrl: string;
  rekorUrl: string;
  tsaUrl?: string;
  rekorEntryType?: 'dsse' | 'intoto';
}

function url(name: string, fallback?: string): string | undefined {
  const text = core.getInput(name).trim();
  if (text === '') return fallback;
  let parsed: URL | undefined;
  try {
    parsed = new URL(text);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new AgoraError(
      'action-input',
      `input \`${name}\` is ${JSON.stringify(text)}, which is not an http(s) URL`,
      `give the service's base URL${fallback ? `, or leave it out for ${fallback}` : ''}`,
    );
  }
  return text.replace(/\/+$/, '');
}

export function readRunInputs(): RunInputs {
  const token = readToken('can push to the repository and write checks (contents: write, checks: write)');
  const refNamespace = readRefNamespace();
  const image = core.getInput('image').trim();
  if (image === '' || /\s/.test(image)) {
    throw new AgoraError(
      'action-input',
      `input \`image\` is ${JSON.stringify(image)}, which is not a container image`,
      'name the image `command` items run in, e.g. `image: node:24-alpine`',
    );
  }
  const concurrencyText = core.getInput('concurrency').trim() || '4';
  if (!/^\d{1,3}$/.test(concurrencyText) || Number(concurrencyText) < 1 || Number(concurrencyText) > 256) {
    throw new AgoraError(
      'action-input',
      `input \`concurrency\` is ${JSON.stringify(concurrencyText)}, which is not a number of items from 1 to 256`,
      'give how many items may run at once, e.g. `concurrency: 2`',
    );
  }
  const entryType = core.getInput('rekor-entry-type').trim() || 'dsse';
  if (entryType !== 'dsse' && entryType !== 'intoto') {
    throw new AgoraError(
      'action-input',
      `input \`rekor-entry-type\` is ${JSON.stringify(entryType)}, which is not a Rekor entry type`,
      'use dsse (the default) or intoto',
    );
  }
  const tsaUrl = url('tsa-url');
  return {
    token,
    refNamespace,
    image,
    concurrency: Number(concurrencyText),
    fulcioUrl: url('fulcio-url', PUBLIC_FULCIO_URL) as string,
    rekorUrl: url('rekor-url', PUBLIC_REKOR_URL) as string,
    ...(tsaUrl ? { tsaUrl } : {}),
    ...(entryType === 'intoto' ? { rekorEntryType: 'intoto' as const } : {}),
  };
}
