/** What a compute resource needs to reach Aurora through the Data API, and the grant that goes with it. */
import { aws_iam as iam } from 'aws-cdk-lib';

/** The three facts the Data API needs; Lambdas and agents get nothing else about the database. */
export interface DatabaseBinding {
  readonly clusterArn: string;
  readonly secretArn: string;
  readonly databaseName: string;
}

/** Data API statement and transaction calls; `rds-data:*` would also allow future, unknown actions. */
export const DATA_API_ACTIONS = [
  'rds-data:ExecuteStatement',
  'rds-data:BatchExecuteStatement',
  'rds-data:BeginTransaction',
  'rds-data:CommitTransaction',
  'rds-data:RollbackTransaction',
] as const;

/** Allows the Data API on this cluster only, and reading this cluster's secret only (the Data API reads it as the caller). */
export function grantDataApi(grantee: iam.IGrantable, db: DatabaseBinding): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: [...DATA_API_ACTIONS], resources: [db.clusterArn] }),
  );
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [db.secretArn] }),
  );
}
