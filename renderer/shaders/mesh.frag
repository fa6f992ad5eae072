#version 330 core
// Soft three-point lighting (key, fill, rim) plus a sky/ground hemisphere term and a faint
// specular highlight. Fragment cost dominates on llvmpipe, so the shader stays short.
in vec3 frag_position;
in vec3 frag_normal;
in vec3 frag_albedo;

uniform vec3 cam_pos;

out vec4 frag_color;

void main()
{
    vec3 n = normalize(frag_normal);
    vec3 v = normalize(cam_pos - frag_position);
    // Normals facing away (inner walls of the mouth; smooth normals at a silhouette) are mirrored into the
    // visible hemisphere: a plain flip would turn a shoulder's upward normal downward and draw a dark rim.
    float nv = dot(n, v);
    if (nv < 0.0) n = normalize(n - 2.0 * nv * v);
    const vec3 key = vec3(0.42, 0.45, 0.79);   // normalised directions, world space
    const vec3 fill = vec3(-0.62, 0.12, 0.78);
    const vec3 rim = vec3(0.0, 0.55, -0.83);
    float diffuse = 0.62 * max(dot(n, key), 0.0)
                  + 0.26 * max(dot(n, fill), 0.0)
                  + 0.18 * max(dot(n, rim), 0.0);
    float hemi = 0.30 + 0.12 * n.y;
    vec3 h = normalize(key + v);
    float spec = 0.06 * pow(max(dot(n, h), 0.0), 28.0);
    vec3 rgb = frag_albedo * (diffuse + hemi) + vec3(spec);
    frag_color = vec4(pow(clamp(rgb, 0.0, 1.0), vec3(1.0 / 1.1)), 1.0);
}
