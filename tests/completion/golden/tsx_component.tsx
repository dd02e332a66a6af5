import React from "react";

type Props = { items: string[] };

export function List({ items }: Props) {
  return (
    <ul>
      {items.map((item) => (
        <li key={item}>{<CURSOR>}</li>
      ))}
    </ul>
  );
}
