import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { configureApp } from './setup.js';
import { tryIt } from './try-it.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule.register());
  configureApp(app);
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  console.log(`\n${tryIt(`http://localhost:${port}`)}`);
}

await bootstrap();
