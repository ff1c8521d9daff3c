/**
 * A Lambda function of the engine with the project's defaults, plus `bind*` helpers that set an environment
 * variable and the matching IAM grant together (Powertools' `bindTable` pattern), so the two cannot drift.
 */
import { Duration, RemovalPolicy, Stack, aws_iam as iam, aws_lambda as lambda, aws_logs as logs, type aws_ssm as ssm } from 'aws-cdk-lib';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import { ENV_KEYS, type EnvKey, type LambdaName } from '../../app/config/env-keys';
import { LOCK_FILE, PROJECT_ROOT, TSCONFIG, lambdaEntry } from '../paths';
import { acknowledge } from '../nag';
import { grantDataApi, type DatabaseBinding } from './database-binding';

const DEFAULT_TIMEOUT = Duration.seconds(30);
const DEFAULT_MEMORY_MB = 512;

/**
 * Native or dialect-only modules the Lambdas never load: they reach Aurora through the Data API, so the
 * SQLite driver (a native addon) must not be bundled. Everything else, the AWS SDK included, is bundled so
 * the versions in package-lock.json are the ones that run.
 */
export const LAMBDA_EXTERNAL_MODULES = ['better-sqlite3'];

/** Lets bundled CommonJS dependencies call `require` inside an ES module bundle. */
const ESM_REQUIRE_SHIM = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

export interface EngineFunctionProps {
  readonly name: LambdaName;
  readonly stage: string;
  readonly logRetention: logs.RetentionDays;
  readonly description: string;
  readonly timeout?: Duration;
  readonly memorySize?: number;
  readonly environment?: Readonly<Record<string, string>>;
}

export class EngineFunction extends NodejsFunction {
  readonly kurokoName: LambdaName;
  /** The function's own role (a sibling construct), where findings about its policy are acknowledged. */
  readonly executionRole: iam.Role;

  constructor(scope: Construct, id: string, props: EngineFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role instead of AWSLambdaBasicExecutionRole, whose log permissions cover every log group.
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Kuroko ${props.stage} ${props.name} function`,
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    super(scope, id, {
      description: props.description,
      entry: lambdaEntry(props.name),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? DEFAULT_MEMORY_MB,
      timeout: props.timeout ?? DEFAULT_TIMEOUT,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: LOCK_FILE,
      logGroup,
      role,
      // Every run is driven by rows in the database and is idempotent: a failed tick or nudge is simply
      // covered by the next one, so Lambda's own async retries would only add duplicate load.
      retryAttempts: 0,
      environment: {
        [ENV_KEYS.stage]: props.stage,
        [ENV_KEYS.powertoolsServiceName]: `kuroko-${props.name}`,
        [ENV_KEYS.powertoolsLogLevel]: 'INFO',
        [ENV_KEYS.nodeOptions]: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_SHIM,
        minify: true,
        // Error classes name themselves after their constructor (`new.target.name`); minified names would leak.
        keepNames: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        externalModules: LAMBDA_EXTERNAL_MODULES,
        tsconfig: TSCONFIG,
        forceDockerBundling: false,
      },
    });
    this.kurokoName = props.name;
    this.executionRole = role;
    acknowledge(this, 'AwsSolutions-L1', 'Node.js 22 is the runtime this project targets (issue 6; middy 6 and the toolchain are tested on it) and is inside Lambda support; moving to a newer one is a one-line change here.');
  }

  /** Sets the Data API environment variables and grants exactly what they need. */
  bindDatabase(db: DatabaseBinding): this {
    this.addEnvironment(ENV_KEYS.dbClusterArn, db.clusterArn);
    this.addEnvironment(ENV_KEYS.dbSecretArn, db.secretArn);
    this.addEnvironment(ENV_KEYS.dbName, db.databaseName);
    grantDataApi(this, db);
    return this;
  }

  /**
   * Tells this function the idle-sleep parameter (app/lambda/lambda-sleep.ts): every tick reads it; the
   * scheduler, which starts a sleep, and the api, which ends one, also write it.
   */
  bindSleep(parameter: ssm.IStringParameter, access: 'read' | 'readWrite'): this {
    this.addEnvironment(ENV_KEYS.sleepParameter, parameter.parameterName);
    // GetParameter and PutParameter are the calls adapters/aws/sleep-gate.ts makes; grantRead would add three reads it never makes.
    const actions = access === 'readWrite' ? ['ssm:GetParameter', 'ssm:PutParameter'] : ['ssm:GetParameter'];
    this.addToRolePolicy(new iam.PolicyStatement({ actions, resources: [parameter.parameterArn] }));
    return this;
  }

  /**
   * Tells this function a SecureString parameter the migrator generates (cdk/stacks/engine-stack.ts, issue 17) under
   * `envKey`. `read` grants GetParameter on it alone; `create` grants PutParameter alone (the migrator puts it with
   * Overwrite=false, adapters/aws/secure-parameters.ts); the migrator reads the admin client's, so it gets both.
   * No kms grant: the parameters use the AWS-managed aws/ssm key, whose key policy already lets the account's
   * principals decrypt through Parameter Store (infra-tests/granted-actions.test.ts cites the page), so what a role
   * may read is decided by the ssm grant on the parameter's ARN.
   */
  bindSecureParameter(envKey: EnvKey, name: string, access: readonly ('read' | 'create')[]): this {
    this.addEnvironment(envKey, name);
    const actions = access.map((a) => (a === 'read' ? 'ssm:GetParameter' : 'ssm:PutParameter'));
    const arn = Stack.of(this).formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.replace(/^\//, '') });
    this.addToRolePolicy(new iam.PolicyStatement({ actions, resources: [arn] }));
    return this;
  }

  /**
   * Tells this function a Secrets Manager secret under `envKey` and lets it read that secret alone. `policyArn` is
   * what IAM matches when the function names the secret without its random suffix (operatorSecret in the stack).
   */
  bindSecret(envKey: EnvKey, secretId: string, policyArn = secretId): this {
    this.addEnvironment(envKey, secretId);
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [policyArn] }));
    return this;
  }

  /** Lets this function nudge `target` (an asynchronous invoke) and tells it the target's name under `envKey`. */
  bindNudge(
    target: lambda.IFunction,
    envKey: typeof ENV_KEYS.processorFunction | typeof ENV_KEYS.notifierFunction | typeof ENV_KEYS.retentionFunction,
  ): this {
    this.addEnvironment(envKey, target.functionName);
    // The unqualified ARN only: `grantInvoke` would add `:*` (every version and alias) as well.
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [target.functionArn] }));
    return this;
  }
}
