/**
 * The CDK app (`cdk.json`: `npx tsx cdk/bin/app.ts`). Configuration comes from the JSON file named by
 * `-c config=<file>` or KUROKO_DEPLOY_CONFIG; without one the defaults synthesise, offline.
 */
import { App } from 'aws-cdk-lib';
import { loadDeployConfig } from '../deploy-config';
import { buildKurokoApp } from '../kuroko-app';

const app = new App();
const config = loadDeployConfig({ contextPath: app.node.tryGetContext('config'), env: process.env });
// The migration runs when the migration files change (cdk/migration-trigger.ts), not on every deploy.
buildKurokoApp(app, config);
app.synth();
