/** Tinybird's template language for pipe node SQL: what other areas may import. */
export { isTemplate, renderTemplate, templateNames, templateParameters, type RenderOptions, type RenderResult } from './render.js';
export type { RequestParams } from './evaluate.js';
export type { TemplateParameter } from './parameters.js';
export { checkScalar, integerRange, isScalarType } from './literals.js';
export { arrayItems, elementInput } from './functions.js';
export { TemplateSyntaxError, TemplateParameterError, TemplateInvalidError, TemplateRaisedError } from './errors.js';
