import { readFileSync } from "fs";

interface Config {
  name: string;
  port: number;
}

export function loadConfig(file: string): Config {
  const raw = readFileSync(file, "utf8");
  <CURSOR>
}
