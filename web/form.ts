/**
 * The page's form as {@link WebRunSettings}, without the DOM: each field's text is read as what it
 * holds (a number field that is empty, or holds text the browser cannot read as a number, is refused
 * here, naming the field). Whether the values make a valid run is the library's call
 * ({@link checkWebRunSettings}), not this file's.
 * @packageDocumentation
 */
import type { WebRunSettings } from './web-sampler.js';

/** The form's fields as the page reads them (`<input>`/`<select>` values; `mixing` is a checkbox). */
export interface FormFields {
  model: string;
  solver: string;
  nfe: string;
  pfdiff: string;
  fr: string;
  points: string;
  mixing: boolean;
  guidance: string;
  class: string;
  count: string;
  seed: string;
}

/** A field that holds no number; `field` is the form element's id. */
export class FormFieldError extends Error {
  constructor(
    readonly field: keyof FormFields,
    message: string,
  ) {
    super(message);
    this.name = 'FormFieldError';
  }
}

/** How each number field is named in messages, and a value to suggest. */
const NUMBER_FIELDS = {
  nfe: { label: 'model calls (NFE)', example: '10' },
  guidance: { label: 'guidance scale', example: '2' },
  count: { label: 'images per row', example: '8' },
  seed: { label: 'seed', example: '0' },
} as const;

function numberField(f: FormFields, field: keyof typeof NUMBER_FIELDS): number {
  const { label, example } = NUMBER_FIELDS[field];
  const text = f[field].trim();
  const v = Number(text);
  if (text === '' || !Number.isFinite(v)) {
    throw new FormFieldError(field, `${label} is empty or not a number${text ? ` ("${text}")` : ''}: enter a number, e.g. ${example}`);
  }
  return v;
}

/** The settings the form describes; throws {@link FormFieldError} for a number field without a number. */
export function settingsFromFields(f: FormFields): WebRunSettings {
  const frInterval = Number(f.fr);
  return {
    model: f.model,
    solver: f.solver,
    nfe: numberField(f, 'nfe'),
    pfdiff: f.pfdiff || null,
    fr: frInterval > 1 ? { interval: frInterval, mixing: f.mixing, points: f.points } : null,
    guidance: numberField(f, 'guidance'),
    classes: f.class === 'all' ? Array.from({ length: 10 }, (_, k) => k) : f.class === 'none' ? [] : [Number(f.class)],
    perRow: numberField(f, 'count'),
    seed: numberField(f, 'seed'),
  };
}
