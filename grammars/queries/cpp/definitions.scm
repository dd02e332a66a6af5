(function_definition declarator: (function_declarator declarator: (_) @name)) @definition.function
(class_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.class
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.struct
(namespace_definition name: (namespace_identifier) @name) @definition.namespace
