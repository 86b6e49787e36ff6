/**
 * The part of better-sqlite3's API the Time Service uses (the package ships no types, and we
 * add no second dependency for them).
 */
declare module 'better-sqlite3' {
  namespace Database {
    interface RunResult { changes: number; lastInsertRowid: number | bigint }
    interface Statement {
      run(...params: unknown[]): RunResult;
      get(...params: unknown[]): unknown;
      all(...params: unknown[]): unknown[];
    }
    interface Database {
      prepare(sql: string): Statement;
      exec(sql: string): this;
      pragma(source: string, options?: { simple?: boolean }): unknown;
      transaction<F extends (...args: never[]) => unknown>(fn: F): F;
      close(): this;
      readonly open: boolean;
    }
    interface Options { readonly?: boolean; fileMustExist?: boolean; timeout?: number }
  }
  const Database: { new (path: string, options?: Database.Options): Database.Database; prototype: Database.Database };
  export default Database;
}
