import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { readRouterSettings } from './router-settings.js';

/** The host Nest gives providers, holding `adapter`. */
function hostOf(adapter: ExpressAdapter | FastifyAdapter): HttpAdapterHost {
  const host = new HttpAdapterHost();
  host.httpAdapter = adapter;
  return host;
}

function withPrefix(prefix: string): ApplicationConfig {
  const config = new ApplicationConfig();
  config.setGlobalPrefix(prefix);
  return config;
}

describe('readRouterSettings', () => {
  it("reads Express's defaults: case and a trailing slash ignored", () => {
    expect(readRouterSettings(hostOf(new ExpressAdapter()), withPrefix('API'))).toEqual({
      caseSensitive: false,
      strict: false,
      prefix: '/api',
    });
  });

  it("reads Fastify's defaults from its initialConfig: case and a trailing slash count", () => {
    expect(readRouterSettings(hostOf(new FastifyAdapter()), withPrefix('API/'))).toEqual({
      caseSensitive: true,
      strict: true,
      prefix: '/API',
    });
  });

  it("reads Fastify's routerOptions", () => {
    const adapter = new FastifyAdapter({
      routerOptions: { caseSensitive: false, ignoreTrailingSlash: true },
    });
    expect(readRouterSettings(hostOf(adapter), undefined)).toEqual({
      caseSensitive: false,
      strict: false,
      prefix: '',
    });
    const onlyOne = new FastifyAdapter({ routerOptions: { ignoreTrailingSlash: true } });
    expect(readRouterSettings(hostOf(onlyOne), undefined)).toMatchObject({
      caseSensitive: true,
      strict: false,
    });
  });

  it("reads a Fastify instance's options when the adapter is given the instance", async () => {
    const { fastify } = await import('fastify');
    const instance = fastify({ routerOptions: { caseSensitive: false } });
    expect(readRouterSettings(hostOf(new FastifyAdapter(instance)), undefined)).toMatchObject({
      caseSensitive: false,
      strict: true,
    });
  });

  it("uses Express's defaults without an HTTP adapter (an application context)", () => {
    const host = new HttpAdapterHost();
    expect(readRouterSettings(host, undefined)).toEqual({
      caseSensitive: false,
      strict: false,
      prefix: '',
    });
  });
});
