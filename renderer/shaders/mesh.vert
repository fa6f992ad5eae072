#version 330 core
// A lean replacement for pyrender's PBR shader: per-vertex colour and normal, no textures.
// pyrender still binds its attributes and uniforms; unknown uniforms are ignored by pyrender.
layout(location = 0) in vec3 position;
#ifdef NORMAL_LOC
layout(location = NORMAL_LOC) in vec3 normal;
#endif
#ifdef COLOR_0_LOC
layout(location = COLOR_0_LOC) in vec4 color_0;
#endif
layout(location = INST_M_LOC) in mat4 inst_m;

uniform mat4 M;
uniform mat4 V;
uniform mat4 P;

out vec3 frag_position;
out vec3 frag_normal;
out vec3 frag_albedo;

void main()
{
    vec4 world = M * inst_m * vec4(position, 1.0);
    gl_Position = P * V * world;
    frag_position = world.xyz;
#ifdef NORMAL_LOC
    frag_normal = mat3(M * inst_m) * normal;
#else
    frag_normal = vec3(0.0, 0.0, 1.0);
#endif
#ifdef COLOR_0_LOC
    frag_albedo = color_0.rgb;
#else
    frag_albedo = vec3(0.85, 0.68, 0.58);
#endif
}
