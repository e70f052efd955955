'use strict';
// Names between JavaScript (camelCase) and the core (snake_case).

const camel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camelPath = (path) => path.split('.').map(camel).join('.');

module.exports = { camel, snake, camelPath };
