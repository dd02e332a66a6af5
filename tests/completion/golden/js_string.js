const path = require("path");

function greet(name) {
  const message = "Hello, <CURSOR>world";
  return message + name;
}

module.exports = { greet };
