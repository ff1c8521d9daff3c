/** Types of bin/node-version.js (plain JavaScript, so that an old Node.js can run it before anything else loads). */
export declare const MINIMUM_NODE_MAJOR: number;
export declare function nodeVersionProblem(version: string): string | undefined;
