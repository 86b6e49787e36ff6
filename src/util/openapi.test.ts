import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openApi } from './openapi.js';

const ITEM = { type: 'object', properties: { id: { type: 'string' } } };
const ERROR = { type: 'object', required: ['error'], properties: { error: { type: 'string' } } };

test('paths, parameters, bodies and responses come from the route schemas', () => {
  const doc = openApi([
    { method: ['GET', 'HEAD'], url: '/items/:id', schema: {
      summary: 'one item',
      params: { type: 'object', properties: { id: { type: 'string', maxLength: 8, description: 'the id' } } },
      querystring: { type: 'object', required: ['q'], properties: { q: { type: 'string' } } },
      response: { 200: ITEM, 404: { description: 'gone', content: { 'text/plain': { schema: { type: 'string' } } } } },
    } },
    { method: 'POST', url: '/items', schema: { body: ITEM, response: { 201: { type: 'object', properties: { item: ITEM, list: { type: 'array', items: ITEM } } } } } },
    { method: 'PUT', url: '/raw', schema: { rawBody: { required: false, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, response: { 200: ERROR } } },
  ], {
    title: 't', version: '1', schemas: { Item: ITEM, Error: ERROR },
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, security: [{ bearer: [] }],
    securityOf: (path) => (path === '/raw' ? [] : undefined),
    extraResponses: () => ({ 404: { description: 'not this one' }, 500: { description: 'error', content: { 'application/json': { schema: ERROR } } } }),
  }) as { paths: Record<string, Record<string, Record<string, unknown>>>; components: { schemas: Record<string, unknown> }; security: unknown };

  assert.deepEqual(Object.keys(doc.paths['/items/{id}']!), ['get'], 'HEAD is left out');
  const get = doc.paths['/items/{id}']!.get!;
  assert.deepEqual(get.parameters, [
    { name: 'id', in: 'path', required: true, description: 'the id', schema: { type: 'string', maxLength: 8 } },
    { name: 'q', in: 'query', required: true, schema: { type: 'string' } },
  ]);
  assert.equal(get.operationId, 'getItemsId');
  const responses = get.responses as Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
  assert.deepEqual(Object.keys(responses), ['200', '404', '500']);
  assert.deepEqual(responses['200']!.content, { 'application/json': { schema: { $ref: '#/components/schemas/Item' } } });
  assert.equal(responses['404']!.description, 'gone', 'a declared status wins over an extra one');
  assert.deepEqual(responses['500']!.content, { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } });

  const post = doc.paths['/items']!.post!;
  assert.deepEqual(post.requestBody, { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Item' } } } });
  assert.deepEqual((post.responses as Record<string, { content: Record<string, { schema: unknown }> }>)['201']!.content['application/json']!.schema, {
    type: 'object', properties: { item: { $ref: '#/components/schemas/Item' }, list: { type: 'array', items: { $ref: '#/components/schemas/Item' } } },
  }, 'shared schemas nested anywhere become references');
  assert.equal(post.security, undefined, 'the document\'s requirement applies');

  const put = doc.paths['/raw']!.put!;
  assert.deepEqual(put.requestBody, { required: false, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } });
  assert.deepEqual(put.security, [], 'a public operation');
  assert.deepEqual(doc.components.schemas, { Item: ITEM, Error: ERROR });
  assert.deepEqual(doc.security, [{ bearer: [] }]);
});
